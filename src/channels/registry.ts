/** The channels this process can use, by name. Adding a channel is one line where it is built (main.ts). */
import { PreconditionError } from "../errors.js";
import type { ChannelName, PaymentChannel } from "./channel.js";

export class ChannelRegistry {
  private readonly channels = new Map<ChannelName, PaymentChannel>();

  constructor(channels: PaymentChannel[]) {
    for (const channel of channels) this.channels.set(channel.name, channel);
  }

  get(name: ChannelName): PaymentChannel {
    const channel = this.channels.get(name);
    if (!channel) throw new PreconditionError("CHANNEL_NOT_AVAILABLE", `channel ${name} is not configured`);
    return channel;
  }

  has(name: ChannelName): boolean {
    return this.channels.has(name);
  }
}
