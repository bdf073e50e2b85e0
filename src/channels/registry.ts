/** The channels this process can use, by name. Adding a channel is one line where it is built (main.ts). */
import { PreconditionError } from "../errors.js";
import type { ChannelName, PaymentChannel } from "./channel.js";

export class ChannelRegistry {
  private readonly channels = new Map<ChannelName, PaymentChannel>();

  constructor(channels: PaymentChannel[]) {
    for (const channel of channels) this.channels.set(channel.name, channel);
  }

  /**
   * The channel's adapter. A channel neither configured by its variables nor simulated is off:
   * asking for it is `CHANNEL_NOT_CONFIGURED` (FAILED_PRECONDITION) naming the channel.
   */
  get(name: ChannelName): PaymentChannel {
    const channel = this.channels.get(name);
    if (!channel) {
      const enabled = [...this.channels.keys()].join(", ") || "none";
      throw new PreconditionError("CHANNEL_NOT_CONFIGURED", `channel ${name} is not configured on this service (channels on: ${enabled})`);
    }
    return channel;
  }

  has(name: ChannelName): boolean {
    return this.channels.has(name);
  }
}
