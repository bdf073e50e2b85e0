/**
 * Reconciliation of a channel's daily bill against our payments and refunds, line by line.
 *
 * 1. Validation pass: every record is read once without touching the database. A malformed bill
 *    (BillFormatError), a line dated outside the bill's day, a currency we do not know or a second
 *    currency refuses the bill (INVALID_ARGUMENT, reason BILL_INVALID, naming the line); nothing of
 *    the run is stored.
 * 2. Matching pass, streamed in batches: one query for the batch's payments (by payment number)
 *    and one for its refunds (by refund number); each line is matched or classified
 *    (MISSING_ON_OUR_SIDE, STATUS_MISMATCH, BILL_AMOUNT_MISMATCH, FEE_MISMATCH). A payment the bill
 *    has paid while ours is PENDING (or FAILED/CLOSED) is queried at the channel at once through the
 *    payment service, which applies what the channel says (a CLOSED one becomes the existing
 *    PAID_AFTER_CLOSE case). Then our paid payments and succeeded refunds of the bill's day that no
 *    line named are MISSING_ON_CHANNEL_SIDE (MatchedIds keeps the named ids in 8 bytes per line).
 * 3. Every unmatched line is a `reconciliation_item` of the run (the first {@link DEFAULT_ITEM_CAP}; the
 *    rest are counted) and a discrepancy, unique per (kind, subject) so a rerun raises nothing twice.
 * 4. The bill's channel fee is posted to the ledger as the platform's cost, only the difference to
 *    what earlier runs of the same day posted, in the transaction that completes the run.
 */
import { createHash } from "node:crypto";
import { BillFormatError, type BillFile, type BillRecord, type ChannelName } from "../channels/channel.js";
import type { ChannelRegistry } from "../channels/registry.js";
import { isDuplicateKey, type Session, type Tx, type UnitOfWork } from "../db/unit-of-work.js";
import type { DiscrepancyRow } from "../discrepancies/discrepancy-entity.js";
import { discrepancyExists, existingSubjects, insertDiscrepancies } from "../discrepancies/discrepancy-store.js";
import { ValidationError, Violations } from "../errors.js";
import { type FeeTerms, paymentFee } from "../fees/fee-calculator.js";
import { newId } from "../ids.js";
import { accounts, PLATFORM_LEDGER_ID, postEntry } from "../ledger/ledger.js";
import { isKnownCurrency } from "../money/currency.js";
import { readPageRequest, toPage } from "../pagination.js";
import { AWAITING_CHANNEL, CHANNEL_MAY_CONTRADICT, isPaid, PAID, type PaymentStatus } from "../payments/payment-status.js";
import {
  findPaymentsByIds,
  findPaymentsByNos,
  listPaidIdsInWindow,
  type PaidCursor,
  type PaymentForBill,
  type PaymentLookup,
  type PaymentView,
} from "../payments/payment-store.js";
import {
  findRefundsByIds,
  findRefundsByNos,
  listSucceededIdsInWindow,
  type RefundForBill,
  type SucceededCursor,
} from "../refunds/refund-store.js";
import { billDateOf, billDayWindow, isCalendarDate } from "./bill-days.js";
import { MatchedIds } from "./matched-ids.js";
import type { ReconciliationItemRow, ReconciliationRunRow } from "./reconciliation-entities.js";
import { channelFeePostedBefore, finishRun, insertItems, insertRun, listRunRows } from "./reconciliation-store.js";

/** Bill lines matched per database round (one payment query and one refund query each). */
export const DEFAULT_BATCH_SIZE = 1000;
/** Batches of the matching pass whose queries run at once (the pool's other connections serve the rest of the service). */
const MATCHING_IN_FLIGHT = 3;
/** Ids per page of the walk over our side of the day (index-only, so larger pages than the batches). */
const WALK_PAGE_SIZE = 5000;
/** Unmatched items (and their discrepancies) stored per run; beyond it they are only counted and the run says it was capped. */
export const DEFAULT_ITEM_CAP = 100_000;
/** Who resolves the STATUS_MISMATCH discrepancies an active query repaired. */
export const RECONCILIATION_RESOLVER = "reconciliation";

export type ReconciliationClass =
  | "MISSING_ON_OUR_SIDE"
  | "MISSING_ON_CHANNEL_SIDE"
  | "BILL_AMOUNT_MISMATCH"
  | "STATUS_MISMATCH"
  | "FEE_MISMATCH";

/** Where a run is, for progress bars: the phase and the bill lines (or our rows) done so far. */
export interface ReconciliationProgress {
  phase: "validating" | "matching" | "channel_side" | "done";
  /** Lines (validating, matching) or our payments and refunds (channel_side) done. */
  done: number;
  /** Lines in the bill, once the validation pass counted them. */
  total?: number;
}

export interface RunOptions {
  onProgress?: (progress: ReconciliationProgress) => void;
}

export interface ReconciliationServiceDeps {
  uow: UnitOfWork;
  channels: ChannelRegistry;
  /** The payment service's active query (QueryPayment), which applies what the channel says. */
  payments: { queryPayment(session: Session, merchantId: string, lookup: PaymentLookup): Promise<PaymentView> };
  /** Contracted fee per channel (config.channelFeeRates); a channel without one has its line fees not checked. */
  feeRates: Readonly<Partial<Record<ChannelName, FeeTerms>>>;
  log: (message: string) => void;
  /** Told when a run ends: its row (with the counts of what did not match), or the error that stopped it. */
  onRunEnd?: (channel: ChannelName, ended: { run: ReconciliationRunRow } | { error: unknown }) => void;
  /** The clock "today" is read from (tests move it). */
  now?: () => Date;
  batchSize?: number;
  /** Ids per page of the walk over our side of the day. */
  walkPageSize?: number;
  itemCap?: number;
}

/** An unmatched line or row, before it is stored as an item and a discrepancy. */
interface Finding {
  kind: ReconciliationClass;
  /** Unique per kind: the payment or refund id, or `channel:p:<payment no>` for a line we have nothing for. */
  subjectRef: string;
  line: number | null;
  merchantId: string | null;
  paymentId: string | null;
  refundId: string | null;
  paymentNo: string | null;
  refundNo: string | null;
  channelTradeNo: string | null;
  currency: string | null;
  ourAmount: bigint | null;
  channelAmount: bigint | null;
  ourFee: bigint | null;
  channelFee: bigint | null;
  detail: string;
  /** Set when the finding was settled on the spot (an active query repaired the status), or it needs no discrepancy of its own. */
  resolution?: string;
  /** No discrepancy of its own: it was raised through another path (PAID_AFTER_CLOSE). */
  noDiscrepancy?: boolean;
}

/** The run's counters, named as the columns they are stored in. */
type Counts = Pick<
  ReconciliationRunRow,
  | "linesTotal"
  | "matched"
  | "missingOnOurSide"
  | "missingOnChannelSide"
  | "amountMismatch"
  | "statusMismatch"
  | "feeMismatch"
  | "channelFee"
  | "merchantFee"
>;

const COUNT_OF: Record<ReconciliationClass, keyof Counts> = {
  MISSING_ON_OUR_SIDE: "missingOnOurSide",
  MISSING_ON_CHANNEL_SIDE: "missingOnChannelSide",
  BILL_AMOUNT_MISMATCH: "amountMismatch",
  STATUS_MISMATCH: "statusMismatch",
  FEE_MISMATCH: "feeMismatch",
};

/** Longest text stored in a discrepancy's detail and resolution. */
const MAX_DETAIL_CHARS = 512;
/** Longest number or trade number stored from a bill (the columns' width). */
const MAX_NUMBER_CHARS = 64;
/** Longest subject of a discrepancy (the column's width). */
const MAX_SUBJECT_CHARS = 96;

function clip(text: string | undefined | null, max: number): string | null {
  if (text === undefined || text === null || text === "") return null;
  return text.length > max ? text.slice(0, max) : text;
}

/** A discrepancy subject for a line we have nothing for; hashed when a foreign number would not fit. */
function foreignSubject(channel: ChannelName, kind: "p" | "r", number: string): string {
  const subject = `${channel}:${kind}:${number}`;
  return subject.length <= MAX_SUBJECT_CHARS ? subject : `${channel}:${kind}#${createHash("sha256").update(number).digest("hex")}`;
}

function billInvalid(error: BillFormatError | { line?: number; detail: string; channel: ChannelName }): ValidationError {
  const where = error.line === undefined ? "" : `line ${error.line}: `;
  return new ValidationError([{ field: "bill", reason: "BILL_INVALID", description: `${where}${error.detail}` }], "BILL_INVALID");
}

// A finding's figures, built only for a finding: a matched line allocates nothing (building them for
// every line was a third of the matching pass's CPU).
function lineFigures(record: BillRecord) {
  return {
    line: record.line,
    currency: record.currency,
    channelAmount: record.amountMinor,
    channelFee: record.feeMinor,
    channelTradeNo: clip(record.channelTradeNo, MAX_NUMBER_CHARS),
  };
}

function paymentFigures(record: BillRecord, payment: PaymentForBill) {
  return {
    ...lineFigures(record),
    subjectRef: payment.id,
    merchantId: payment.merchantId,
    paymentId: payment.id,
    refundId: null,
    paymentNo: payment.paymentNo,
    refundNo: null,
    ourAmount: payment.amount,
    ourFee: payment.fee,
    channelTradeNo: clip(record.channelTradeNo, MAX_NUMBER_CHARS) ?? payment.channelTradeNo ?? null,
  };
}

function refundFigures(record: BillRecord, refund: RefundForBill) {
  return {
    ...lineFigures(record),
    subjectRef: refund.id,
    merchantId: refund.merchantId,
    paymentId: refund.paymentId,
    refundId: refund.id,
    paymentNo: clip(record.paymentNo, MAX_NUMBER_CHARS),
    refundNo: refund.refundNo,
    ourAmount: refund.amount,
    ourFee: -refund.feeReturned,
  };
}

export function createReconciliationService(deps: ReconciliationServiceDeps) {
  const { uow } = deps;
  const now = deps.now ?? (() => new Date());
  const batchSize = deps.batchSize ?? DEFAULT_BATCH_SIZE;
  const itemCap = deps.itemCap ?? DEFAULT_ITEM_CAP;
  const walkPageSize = deps.walkPageSize ?? WALK_PAGE_SIZE;

  /** A past day of the channel's calendar, or a field violation on `field`. */
  function checkBillDate(v: Violations, field: string, channel: ChannelName | undefined, billDate: string): void {
    if (!isCalendarDate(billDate)) {
      v.add(field, "INVALID_FORMAT", "must be a date written YYYY-MM-DD");
      return;
    }
    if (channel && billDate >= billDateOf(channel, now())) {
      v.add(field, "NOT_PAST", `must be a past day (the ${channel} bill day ${billDateOf(channel, now())} is not over)`);
    }
  }

  /** Pass 1: reads every record, touching nothing; returns the line count and the bill's currency ("" for no lines). */
  async function validate(bill: BillFile, channel: ChannelName, billDate: string, options: RunOptions): Promise<{ lines: number; currency: string }> {
    const window = billDayWindow(channel, billDate);
    let lines = 0;
    let currency = "";
    try {
      for await (const record of bill.records()) {
        lines++;
        if (!isKnownCurrency(record.currency)) {
          throw billInvalid({ channel, line: record.line, detail: `unknown currency ${JSON.stringify(record.currency.slice(0, 8))}` });
        }
        if (currency === "") currency = record.currency;
        else if (record.currency !== currency) {
          throw billInvalid({ channel, line: record.line, detail: `a second currency ${record.currency} in a ${currency} bill` });
        }
        const at = record.occurredAt.getTime();
        if (!(at >= window.from.getTime() && at < window.to.getTime())) {
          throw billInvalid({
            channel,
            line: record.line,
            detail: `dated ${Number.isNaN(at) ? "invalid" : record.occurredAt.toISOString()}, outside the bill day ${billDate}`,
          });
        }
        if (record.amountMinor <= 0n) throw billInvalid({ channel, line: record.line, detail: "amount is not positive" });
        if (lines % 10_000 === 0) options.onProgress?.({ phase: "validating", done: lines });
      }
    } catch (error) {
      if (error instanceof BillFormatError) throw billInvalid(error);
      throw error;
    }
    options.onProgress?.({ phase: "validating", done: lines, total: lines });
    return { lines, currency };
  }

  /** Opens a bill (a bill that cannot be read is BILL_INVALID, with nothing stored), reconciles it and disposes of it. */
  async function runOpened(channel: ChannelName, open: () => Promise<BillFile>, source: "DOWNLOAD" | "IMPORT", options: RunOptions): Promise<ReconciliationRunRow> {
    try {
      const run = await runOpenedBill(open, source, options);
      deps.onRunEnd?.(channel, { run });
      return run;
    } catch (error) {
      deps.onRunEnd?.(channel, { error });
      throw error;
    }
  }

  async function runOpenedBill(open: () => Promise<BillFile>, source: "DOWNLOAD" | "IMPORT", options: RunOptions): Promise<ReconciliationRunRow> {
    let bill: BillFile;
    try {
      bill = await open();
    } catch (error) {
      if (error instanceof BillFormatError) throw billInvalid(error);
      throw error;
    }
    try {
      return await run(bill, source, options);
    } finally {
      await bill.dispose();
    }
  }

  async function run(bill: BillFile, source: "DOWNLOAD" | "IMPORT", options: RunOptions): Promise<ReconciliationRunRow> {
    const channel = bill.channel;
    const billDate = bill.billDate;
    const { lines, currency } = await validate(bill, channel, billDate, options);

    const session = uow.session();
    const terms = deps.feeRates[channel];
    const started = now();
    const counts: Counts = {
      linesTotal: BigInt(lines),
      matched: 0n,
      missingOnOurSide: 0n,
      missingOnChannelSide: 0n,
      amountMismatch: 0n,
      statusMismatch: 0n,
      feeMismatch: 0n,
      channelFee: 0n,
      merchantFee: 0n,
    };
    const runRow: ReconciliationRunRow = {
      id: newId(started.getTime()),
      channel,
      billDate,
      source,
      currency,
      ...counts,
      channelFeePosted: 0n,
      feeChecked: terms !== undefined,
      itemsCapped: false,
      startedAt: started,
      finishedAt: null,
    };
    await insertRun(session, runRow);
    let itemsStored = 0;
    let capped = false;

    /** Stores a batch's findings (items and discrepancies) in one transaction, within the cap. */
    async function store(findings: Finding[]): Promise<void> {
      for (const finding of findings) counts[COUNT_OF[finding.kind]]++;
      const room = Math.max(0, itemCap - itemsStored);
      if (findings.length > room) capped = true;
      const kept = findings.slice(0, room);
      if (kept.length === 0) return;
      itemsStored += kept.length;
      const at = now();
      const items: ReconciliationItemRow[] = kept.map((finding) => ({
        id: newId(at.getTime()),
        runId: runRow.id,
        kind: finding.kind,
        line: finding.line === null ? null : BigInt(finding.line),
        paymentId: finding.paymentId,
        refundId: finding.refundId,
        paymentNo: finding.paymentNo,
        refundNo: finding.refundNo,
        channelTradeNo: finding.channelTradeNo,
        currency: finding.currency,
        ourAmount: finding.ourAmount,
        channelAmount: finding.channelAmount,
        ourFee: finding.ourFee,
        channelFee: finding.channelFee,
        detail: clip(finding.detail, MAX_DETAIL_CHARS) ?? "",
      }));
      const raised = kept.filter((finding) => !finding.noDiscrepancy);
      // A concurrent run of the same bill may raise the same discrepancy first: read again and retry.
      for (let attempt = 1; ; attempt++) {
        try {
          await uow.transaction(session, async (tx) => {
            await insertItems(tx, items);
            await insertDiscrepancies(tx, await newDiscrepancies(tx, raised, at));
          });
          return;
        } catch (error) {
          if (!isDuplicateKey(error) || attempt >= 3) throw error;
        }
      }
    }

    async function newDiscrepancies(tx: Tx, findings: Finding[], at: Date): Promise<DiscrepancyRow[]> {
      const rows: DiscrepancyRow[] = [];
      const byKind = new Map<ReconciliationClass, Finding[]>();
      for (const finding of findings) {
        const list = byKind.get(finding.kind);
        if (list) list.push(finding);
        else byKind.set(finding.kind, [finding]);
      }
      for (const [kind, list] of byKind) {
        const existing = await existingSubjects(tx, kind, list.map((finding) => finding.subjectRef));
        for (const finding of list) {
          if (existing.has(finding.subjectRef)) continue;
          existing.add(finding.subjectRef);
          rows.push({
            id: newId(at.getTime()),
            kind,
            subjectRef: finding.subjectRef,
            channel,
            merchantId: finding.merchantId,
            paymentId: finding.paymentId,
            channelTradeNo: finding.channelTradeNo,
            amount: finding.channelAmount ?? finding.ourAmount,
            currency: finding.currency,
            detail: clip(finding.detail, MAX_DETAIL_CHARS) ?? "",
            status: finding.resolution === undefined ? "OPEN" : "RESOLVED",
            resolution: finding.resolution === undefined ? null : clip(finding.resolution, MAX_DETAIL_CHARS),
            createdAt: at,
            resolvedAt: finding.resolution === undefined ? null : at,
            resolvedBy: finding.resolution === undefined ? null : RECONCILIATION_RESOLVER,
            reconciliationRunId: runRow.id,
            refundId: finding.refundId,
          });
        }
      }
      return rows;
    }

    const matchedPayments = new MatchedIds();
    const matchedRefunds = new MatchedIds();

    /** The bill has the payment paid while we have it not paid: ask the channel now, through the payment service. */
    async function repairStatus(record: BillRecord, payment: PaymentForBill): Promise<Finding> {
      const finding: Finding = {
        kind: "STATUS_MISMATCH",
        subjectRef: payment.id,
        line: record.line,
        merchantId: payment.merchantId,
        paymentId: payment.id,
        refundId: null,
        paymentNo: payment.paymentNo,
        refundNo: null,
        channelTradeNo: clip(record.channelTradeNo, MAX_NUMBER_CHARS) ?? payment.channelTradeNo ?? null,
        currency: record.currency,
        ourAmount: payment.amount,
        channelAmount: record.amountMinor,
        ourFee: payment.fee,
        channelFee: record.feeMinor,
        detail: `bill line ${record.line} has the payment paid; ours was ${payment.status}`,
      };
      let after: string;
      try {
        after = (await deps.payments.queryPayment(uow.session(), payment.merchantId, { paymentId: payment.id })).payment.status;
      } catch (error) {
        deps.log(`reconciliation: active query of payment ${payment.id} failed: ${error instanceof Error ? error.name : "error"}`);
        finding.detail += "; the active query failed, ask again (QueryPayment)";
        return finding;
      }
      if (isPaid(after)) {
        finding.resolution = `active query: the channel has it paid; the payment is now ${after}`;
      } else if (after === "CLOSED" && (await discrepancyExists(session, "PAID_AFTER_CLOSE", payment.id))) {
        finding.detail += "; paid after close: raised as PAID_AFTER_CLOSE, refund the shopper";
        finding.noDiscrepancy = true;
      } else {
        finding.detail += `; the active query left it ${after}`;
      }
      return finding;
    }

    async function matchBatch(records: BillRecord[]): Promise<void> {
      const paymentNos = new Set<string>();
      const refundNos = new Set<string>();
      for (const record of records) {
        if (record.kind === "payment") paymentNos.add(record.paymentNo);
        else if (record.refundNo) refundNos.add(record.refundNo);
      }
      const [payments, refunds] = await Promise.all([
        findPaymentsByNos(session, channel, [...paymentNos]),
        findRefundsByNos(session, channel, [...refundNos]),
      ]);
      const paymentByNo = new Map(payments.map((payment) => [payment.paymentNo, payment]));
      const refundByNo = new Map(refunds.map((refund) => [refund.refundNo, refund]));
      const findings: Finding[] = [];
      for (const record of records) {
        counts.channelFee += record.feeMinor;
        if (record.kind === "payment") {
          const payment = paymentByNo.get(record.paymentNo);
          if (!payment) {
            findings.push({
              ...lineFigures(record),
              kind: "MISSING_ON_OUR_SIDE",
              subjectRef: foreignSubject(channel, "p", record.paymentNo),
              merchantId: null,
              paymentId: null,
              refundId: null,
              paymentNo: clip(record.paymentNo, MAX_NUMBER_CHARS),
              refundNo: null,
              ourAmount: null,
              ourFee: null,
              detail: `bill line ${record.line}: payment ${clip(record.paymentNo, MAX_NUMBER_CHARS)} is not ours`,
            });
            continue;
          }
          matchedPayments.add(payment.id);
          const status = payment.status as PaymentStatus;
          if (status === AWAITING_CHANNEL || CHANNEL_MAY_CONTRADICT.includes(status)) {
            findings.push(await repairStatus(record, payment));
          } else if (record.amountMinor !== payment.amount || record.currency !== payment.currency) {
            findings.push({
              ...paymentFigures(record, payment),
              kind: "BILL_AMOUNT_MISMATCH",
              detail: `bill line ${record.line}: ${record.amountMinor} ${record.currency} on the bill, ${payment.amount} ${payment.currency} ours`,
            });
          } else if (terms && record.feeMinor !== paymentFee(record.amountMinor, terms)) {
            findings.push({
              ...paymentFigures(record, payment),
              kind: "FEE_MISMATCH",
              detail: `bill line ${record.line}: channel fee ${record.feeMinor}, the contracted rate gives ${paymentFee(record.amountMinor, terms)}`,
            });
          } else {
            counts.matched++;
            counts.merchantFee += payment.fee;
          }
          continue;
        }
        const refund = record.refundNo ? refundByNo.get(record.refundNo) : undefined;
        if (!refund) {
          findings.push({
            ...lineFigures(record),
            kind: "MISSING_ON_OUR_SIDE",
            subjectRef: foreignSubject(channel, "r", record.refundNo ?? `${record.paymentNo}@${record.line}`),
            merchantId: null,
            paymentId: null,
            refundId: null,
            paymentNo: clip(record.paymentNo, MAX_NUMBER_CHARS),
            refundNo: clip(record.refundNo, MAX_NUMBER_CHARS),
            ourAmount: null,
            ourFee: null,
            detail: `bill line ${record.line}: refund ${clip(record.refundNo, MAX_NUMBER_CHARS) ?? "(no number)"} is not ours`,
          });
          continue;
        }
        matchedRefunds.add(refund.id);
        if (refund.status !== "SUCCEEDED") {
          // The refund service has no query-and-apply of its own: the refund sweeper asks the channel on its schedule.
          findings.push({
            ...refundFigures(record, refund),
            kind: "STATUS_MISMATCH",
            detail: `bill line ${record.line} has the refund done; ours is ${refund.status} (the refund sweeper asks the channel)`,
          });
        } else if (record.amountMinor !== refund.amount || record.currency !== refund.currency) {
          findings.push({
            ...refundFigures(record, refund),
            kind: "BILL_AMOUNT_MISMATCH",
            detail: `bill line ${record.line}: refund of ${record.amountMinor} ${record.currency} on the bill, ${refund.amount} ${refund.currency} ours`,
          });
        } else {
          counts.matched++;
          counts.merchantFee -= refund.feeReturned;
        }
      }
      await store(findings);
    }

    // Pass 2: match the lines, batch by batch. Up to MATCHING_IN_FLIGHT batches are matched while the
    // next is read: the file reading overlaps the database round trips, and the round trips overlap
    // each other (their shared state, the counts and the matched ids, changes only between awaits).
    let batch: BillRecord[] = [];
    let done = 0;
    const inFlight: Array<Promise<void>> = [];
    const matchNext = async (records: BillRecord[]) => {
      if (inFlight.length >= MATCHING_IN_FLIGHT) await inFlight.shift();
      const matching = matchBatch(records).then(() => {
        done += records.length;
        options.onProgress?.({ phase: "matching", done, total: lines });
      });
      // Surfaced when it is awaited; never left unhandled meanwhile.
      matching.catch(() => {});
      inFlight.push(matching);
    };
    try {
      for await (const record of bill.records()) {
        batch.push(record);
        if (batch.length >= batchSize) {
          await matchNext(batch);
          batch = [];
        }
      }
      if (batch.length > 0) await matchNext(batch);
      while (inFlight.length > 0) await inFlight.shift();
    } catch (error) {
      // The file changed between the passes: the run stays unfinished (no finished_at), as a crash leaves it.
      if (error instanceof BillFormatError) throw billInvalid(error);
      throw error;
    }

    // Pass 3: ours of the day that no line named.
    matchedPayments.seal();
    matchedRefunds.seal();
    const window = billDayWindow(channel, billDate);
    let ourDone = 0;
    let findings: Finding[] = [];
    const flush = async (force: boolean) => {
      if (findings.length >= batchSize || (force && findings.length > 0)) {
        await store(findings);
        findings = [];
      }
    };
    // Ids first, index-only; the rows only of the ids no line named.
    let afterPayment: PaidCursor | undefined;
    for (;;) {
      const page = await listPaidIdsInWindow(session, channel, window, afterPayment, walkPageSize);
      const absent = page.filter((entry) => !matchedPayments.has(entry.id)).map((entry) => entry.id);
      for (const payment of await findPaymentsByIds(session, absent, PAID)) {
        findings.push({
          kind: "MISSING_ON_CHANNEL_SIDE",
          subjectRef: payment.id,
          line: null,
          merchantId: payment.merchantId,
          paymentId: payment.id,
          refundId: null,
          paymentNo: payment.paymentNo,
          refundNo: null,
          channelTradeNo: payment.channelTradeNo ?? null,
          currency: payment.currency,
          ourAmount: payment.amount,
          channelAmount: null,
          ourFee: payment.fee,
          channelFee: null,
          detail: `payment paid at ${payment.paidAt.toISOString()} (${payment.status}) is not on the ${channel} bill of ${billDate}`,
        });
      }
      ourDone += page.length;
      await flush(false);
      options.onProgress?.({ phase: "channel_side", done: ourDone });
      if (page.length < walkPageSize) break;
      afterPayment = page[page.length - 1]!.cursor;
    }
    let afterRefund: SucceededCursor | undefined;
    for (;;) {
      const page = await listSucceededIdsInWindow(session, channel, window, afterRefund, walkPageSize);
      const absent = page.filter((entry) => !matchedRefunds.has(entry.id)).map((entry) => entry.id);
      for (const refund of await findRefundsByIds(session, absent, "SUCCEEDED")) findings.push(missingRefund(refund, channel, billDate));
      ourDone += page.length;
      await flush(false);
      options.onProgress?.({ phase: "channel_side", done: ourDone });
      if (page.length < walkPageSize) break;
      afterRefund = page[page.length - 1]!.cursor;
    }
    await flush(true);

    // Complete the run and post the day's channel fee difference in one transaction. Two runs of the
    // same day racing take the same posting sequence number: the unique ref fails one, which reads again.
    const finished: Partial<ReconciliationRunRow> = {
      ...counts,
      itemsCapped: capped,
    };
    for (let attempt = 1; ; attempt++) {
      try {
        await uow.transaction(session, async (tx) => {
          let posted = 0n;
          if (currency !== "") {
            const before = await channelFeePostedBefore(tx, channel, billDate, currency);
            posted = counts.channelFee - before.total;
            if (posted !== 0n) {
              await postEntry(tx, {
                ref: `channel_fee:${channel}:${billDate}:${currency}:${before.postings + 1}`,
                entryType: "channel_fee",
                merchantId: PLATFORM_LEDGER_ID,
                currency,
                postings: [
                  { account: accounts.channelFeeExpense(channel), amount: posted },
                  { account: accounts.channelClearing(channel), amount: -posted },
                ],
              });
            }
          }
          await finishRun(tx, runRow.id, { ...finished, channelFeePosted: posted, finishedAt: now() });
          Object.assign(runRow, finished, { channelFeePosted: posted });
        });
        break;
      } catch (error) {
        if (!isDuplicateKey(error) || attempt >= 5) throw error;
      }
    }
    runRow.finishedAt = now();
    options.onProgress?.({ phase: "done", done: lines, total: lines });
    return runRow;
  }

  return {
    /**
     * Downloads the channel's bill of `billDate` (a past day of the channel's calendar) and
     * reconciles it. A bill that cannot be read is INVALID_ARGUMENT (BILL_INVALID) with nothing stored;
     * a channel that cannot be reached is ChannelUnavailableError.
     */
    async reconcileChannel(channel: ChannelName, billDate: string, options: RunOptions = {}): Promise<ReconciliationRunRow> {
      const v = new Violations();
      checkBillDate(v, "bill_date", channel, billDate);
      v.throwIfAny();
      const adapter = deps.channels.get(channel);
      return runOpened(channel, () => adapter.fetchBill(billDate), "DOWNLOAD", options);
    },

    /** Reconciles a bill file in the channel's download format (ImportStatement, the CLI's `--file`). The file stays the caller's. */
    async importStatement(
      channel: ChannelName,
      billDate: string,
      filePath: string,
      options: RunOptions & { sha1?: string } = {},
    ): Promise<ReconciliationRunRow> {
      const v = new Violations();
      checkBillDate(v, "bill_date", channel, billDate);
      if (options.sha1 !== undefined && options.sha1 !== "" && !/^[0-9a-fA-F]{40}$/.test(options.sha1)) {
        v.add("sha1", "INVALID_FORMAT", "must be 40 hexadecimal digits");
      }
      v.throwIfAny();
      const adapter = deps.channels.get(channel);
      return runOpened(channel, () => adapter.openBillFile(filePath, billDate, options.sha1 ? { sha1: options.sha1 } : {}), "IMPORT", options);
    },

    /** Past runs (of one channel, when given), newest first, paged. */
    async listRuns(
      session: Session,
      filter: { channel?: ChannelName; pageSize: number; pageToken: string },
    ): Promise<{ runs: ReconciliationRunRow[]; nextPageToken: string }> {
      const v = new Violations();
      const page = readPageRequest(v, filter, [filter.channel ?? ""]);
      v.throwIfAny();
      const { items, nextPageToken } = toPage(await listRunRows(session, filter.channel, page), page);
      return { runs: items, nextPageToken };
    },
  };
}

function missingRefund(refund: RefundForBill & { succeededAt: Date }, channel: ChannelName, billDate: string): Finding {
  return {
    kind: "MISSING_ON_CHANNEL_SIDE",
    subjectRef: refund.id,
    line: null,
    merchantId: refund.merchantId,
    paymentId: refund.paymentId,
    refundId: refund.id,
    paymentNo: null,
    refundNo: refund.refundNo,
    channelTradeNo: refund.channelRefundNo ?? null,
    currency: refund.currency,
    ourAmount: refund.amount,
    channelAmount: null,
    ourFee: -refund.feeReturned,
    channelFee: null,
    detail: `refund succeeded at ${refund.succeededAt.toISOString()} is not on the ${channel} bill of ${billDate}`,
  };
}

export type ReconciliationService = ReturnType<typeof createReconciliationService>;
