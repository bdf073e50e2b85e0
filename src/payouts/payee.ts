/**
 * A merchant's payee at a payout channel: which account types each channel pays to, the bounds on
 * what is stored, the masked hint that is all anyone is shown, and the sealed form kept at rest.
 */
import type { ChannelName, PayeeAccount } from "../channels/channel.js";
import type { Violations } from "../errors.js";
import { checkPrintable } from "../input-text.js";
import type { SecretBox } from "../merchants/credentials.js";

export type PayeeAccountType = PayeeAccount["type"];

/** The channel that pays to each account type. */
export const CHANNEL_OF_ACCOUNT_TYPE: Readonly<Record<PayeeAccountType, ChannelName>> = {
  ALIPAY_USER_ID: "alipay",
  ALIPAY_LOGON_ID: "alipay",
  WECHAT_OPENID: "wechatpay",
  BANK_ACCOUNT: "card",
};

/** Longest account identifier accepted (Alipay's `identity` takes at most 100 characters). */
export const MAX_ACCOUNT_CHARS = 100;
/** Longest payee name accepted. */
export const MAX_NAME_CHARS = 100;

/** Characters of the account shown in clear at its end. */
const HINT_VISIBLE_CHARS = 4;
/** Masking characters at most, so a hint fits its column whatever the account's length. */
const HINT_MAX_MASK = 16;

/**
 * Checks the parts every channel agrees on (present, bounded, printable, a name where the type needs
 * one), adding violations named after the request's fields; returns whether they hold. The channel's
 * own shape rules come after, from its adapter's `validatePayee`.
 */
export function checkPayeeInput(violations: Violations, channel: ChannelName | undefined, payee: PayeeAccount): boolean {
  const before = violations.size;
  if (channel && CHANNEL_OF_ACCOUNT_TYPE[payee.type] !== channel) {
    violations.add("account_type", "ACCOUNT_TYPE_NOT_FOR_CHANNEL", `${payee.type} accounts are paid by ${CHANNEL_OF_ACCOUNT_TYPE[payee.type]}, not ${channel}`);
  }
  if (payee.account === "") violations.add("account", "REQUIRED", "is required");
  else if (payee.account.length > MAX_ACCOUNT_CHARS) violations.add("account", "TOO_LONG", `must be at most ${MAX_ACCOUNT_CHARS} characters`);
  else if (checkPrintable(violations, "account", payee.account) && payee.account.trim() !== payee.account) {
    violations.add("account", "INVALID_FORMAT", "must not start or end with white space");
  }
  const name = payee.name ?? "";
  if (name.length > MAX_NAME_CHARS) violations.add("name", "TOO_LONG", `must be at most ${MAX_NAME_CHARS} characters`);
  else if (name !== "") checkPrintable(violations, "name", name);
  else if (payee.type === "ALIPAY_LOGON_ID") violations.add("name", "REQUIRED", "is required for an Alipay login id");
  return violations.size === before;
}

/** The account with all but its last four characters masked (all of it when it is short). */
export function accountHint(account: string): string {
  const chars = [...account];
  if (chars.length < 2 * HINT_VISIBLE_CHARS) return "*".repeat(Math.min(chars.length, HINT_MAX_MASK));
  const masked = Math.min(chars.length - HINT_VISIBLE_CHARS, HINT_MAX_MASK);
  return "*".repeat(masked) + chars.slice(-HINT_VISIBLE_CHARS).join("");
}

/** The payee sealed for storage (account and name never stored in clear). */
export function sealPayee(secrets: SecretBox, payee: PayeeAccount): string {
  return secrets.seal(JSON.stringify({ type: payee.type, account: payee.account, name: payee.name ?? "" }));
}

/** The payee a sealed text holds. */
export function openPayee(secrets: SecretBox, sealed: string): PayeeAccount {
  const parsed = JSON.parse(secrets.open(sealed)) as { type: PayeeAccountType; account: string; name: string };
  return parsed.name === "" ? { type: parsed.type, account: parsed.account } : { type: parsed.type, account: parsed.account, name: parsed.name };
}
