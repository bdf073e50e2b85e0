import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { divideRoundHalfUp, paymentFee, refundedFee } from "../../src/fees/fee-calculator.js";

describe("fee arithmetic (half-up on the minor unit)", () => {
  it("rounds halves up and everything else to the nearest unit", () => {
    expect(divideRoundHalfUp(5n, 10n)).toBe(1n);
    expect(divideRoundHalfUp(4n, 10n)).toBe(0n);
    expect(divideRoundHalfUp(15n, 10n)).toBe(2n);
    expect(divideRoundHalfUp(25n, 10n)).toBe(3n);
    expect(divideRoundHalfUp(0n, 7n)).toBe(0n);
  });

  it("charges 0.6% of 1 minor unit as nothing, of 84 units as 1 (0.504 → 1), of 83 as 0 (0.498)", () => {
    const terms = { rateBps: 60, fixedFee: 0n, minFee: 0n };
    expect(paymentFee(1n, terms)).toBe(0n);
    expect(paymentFee(84n, terms)).toBe(1n);
    expect(paymentFee(83n, terms)).toBe(0n);
  });

  it("applies the minimum and the fixed part, and never charges more than the amount", () => {
    expect(paymentFee(1n, { rateBps: 0, fixedFee: 0n, minFee: 5n })).toBe(1n);
    expect(paymentFee(1000n, { rateBps: 100, fixedFee: 30n, minFee: 0n })).toBe(40n);
    expect(paymentFee(1000n, { rateBps: 100, fixedFee: 0n, minFee: 50n })).toBe(50n);
  });

  it("works the same in exponent-0 (JPY) and exponent-3 (KWD) units: rounding is on the minor unit", () => {
    // ¥999 at 3.25% = 32.4675 → ¥32; 1.235 KWD (1235 fils) at 3.25% = 40.1375 → 40 fils.
    expect(paymentFee(999n, { rateBps: 325, fixedFee: 0n, minFee: 0n })).toBe(32n);
    expect(paymentFee(1235n, { rateBps: 325, fixedFee: 0n, minFee: 0n })).toBe(40n);
    // ¥1000 at 0.05% = 0.5 → ¥1 (the half goes up).
    expect(paymentFee(1000n, { rateBps: 5, fixedFee: 0n, minFee: 0n })).toBe(1n);
  });

  it("returns nothing of the fee under RETAIN", () => {
    expect(
      refundedFee({ policy: "RETAIN", amount: 100n, fee: 3n, refundAmount: 100n, refundedBefore: 0n, feeReturnedBefore: 0n }),
    ).toBe(0n);
  });

  it("returns the fee exactly, in total, over any split of refunds under PRORATE", () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 1n, max: 100_000n }),
        fc.integer({ min: 0, max: 10_000 }),
        fc.array(fc.integer({ min: 1, max: 100 }), { minLength: 1, maxLength: 20 }),
        (amount, rateBps, weights) => {
          const fee = paymentFee(amount, { rateBps, fixedFee: 0n, minFee: 0n });
          let refundedBefore = 0n;
          let feeReturnedBefore = 0n;
          for (const weight of weights) {
            const left = amount - refundedBefore;
            if (left === 0n) break;
            let part = (amount * BigInt(weight)) / 100n;
            if (part < 1n) part = 1n;
            if (part > left) part = left;
            const back = refundedFee({ policy: "PRORATE", amount, fee, refundAmount: part, refundedBefore, feeReturnedBefore });
            expect(back).toBeGreaterThanOrEqual(0n);
            refundedBefore += part;
            feeReturnedBefore += back;
            expect(feeReturnedBefore).toBeLessThanOrEqual(fee);
          }
          if (refundedBefore < amount) {
            feeReturnedBefore += refundedFee({
              policy: "PRORATE",
              amount,
              fee,
              refundAmount: amount - refundedBefore,
              refundedBefore,
              feeReturnedBefore,
            });
          }
          expect(feeReturnedBefore).toBe(fee);
        },
      ),
    );
  });
});
