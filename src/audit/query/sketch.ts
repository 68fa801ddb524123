/**
 * Quantiles of durations in bounded memory (DDSketch, Masson et al., VLDB 2019): values go
 * into logarithmic buckets whose width is 2 % of their value, so a quantile read back is
 * within 1 % of the true one, whatever the count, in at most a few hundred buckets for
 * everything from 1 µs to a day. The digest keeps one per fingerprint; exact quantiles
 * would keep every duration of a log that may not fit in memory.
 */

const RELATIVE_ACCURACY = 0.01;
const GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY);
const LOG_GAMMA = Math.log(GAMMA);

export class QuantileSketch {
  private readonly buckets = new Map<number, number>();
  /** Values below 1 (0 µs: a statement refused before it ran) are counted apart. */
  private zeros = 0;
  count = 0;
  min = Infinity;
  max = -Infinity;

  add(value: number): void {
    if (!Number.isFinite(value) || value < 0) return;
    this.count += 1;
    if (value < this.min) this.min = value;
    if (value > this.max) this.max = value;
    if (value < 1) {
      this.zeros += 1;
      return;
    }
    const index = Math.ceil(Math.log(value) / LOG_GAMMA);
    this.buckets.set(index, (this.buckets.get(index) ?? 0) + 1);
  }

  /**
   * The q-quantile (0..1) by nearest rank, the smallest value at least q of all are no larger
   * than (p99 of 3 values is the largest), within 1 %, clamped to the values seen; null when empty.
   */
  quantile(q: number): number | null {
    if (this.count === 0) return null;
    // Rounded first: q * n may land a hair above the whole number it is (0.07 * 100 is 7.000000000000001).
    const rank = Math.max(1, Math.ceil(Math.round(q * this.count * 1e6) / 1e6));
    if (rank <= this.zeros) return this.min;
    let seen = this.zeros;
    for (const index of [...this.buckets.keys()].sort((a, b) => a - b)) {
      seen += this.buckets.get(index)!;
      if (seen >= rank) return Math.min(this.max, Math.max(this.min, (2 * GAMMA ** index) / (GAMMA + 1)));
    }
    return this.max;
  }
}
