// AHP as services/scoring/index_system.py computes it: principal eigenvector by power iteration,
// λmax, CI = (λmax − n)/(n − 1), CR = CI / RI(n) with Saaty's random index; the server refuses CR ≥ 0.1.

export const RANDOM_INDEX = [0.0, 0.0, 0.58, 0.9, 1.12, 1.24, 1.32, 1.41, 1.45, 1.49, 1.51, 1.48, 1.56, 1.57, 1.59];
export const MAX_CONSISTENCY_RATIO = 0.1;

function product(matrix, vector) {
  return matrix.map((row) => row.reduce((sum, a, j) => sum + a * vector[j], 0));
}

/** Weights, λmax, CI and CR of a positive reciprocal matrix. */
export function ahp(matrix) {
  const n = matrix.length;
  let weights = new Array(n).fill(1 / n);
  for (let iteration = 0; iteration < 10000; iteration += 1) {
    const next = product(matrix, weights);
    const total = next.reduce((a, b) => a + b, 0);
    const updated = next.map((x) => x / total);
    const change = Math.max(...updated.map((w, i) => Math.abs(w - weights[i])));
    weights = updated;
    if (change < 1e-13) break;
  }
  const image = product(matrix, weights);
  const lambdaMax = image.reduce((sum, x, i) => sum + x / weights[i], 0) / n;
  const ci = n > 2 ? (lambdaMax - n) / (n - 1) : 0;
  const ri = RANDOM_INDEX[n - 1] || 0;
  const cr = ri > 0 ? ci / ri : 0;
  return { weights, lambdaMax, ci, cr, consistent: cr < MAX_CONSISTENCY_RATIO };
}

/** The full reciprocal matrix from the upper triangle's judgements (upper[i][j] for i < j). */
export function reciprocal(n, upper) {
  return Array.from({ length: n }, (_, i) =>
    Array.from({ length: n }, (_, j) => (i === j ? 1 : i < j ? upper[i][j] : 1 / upper[j][i])));
}

/** A judgement typed as "3", "1/5" or "0.2"; NaN when it is not a positive number. */
export function parseJudgement(text) {
  const value = String(text).trim();
  const fraction = value.match(/^(\d+(?:\.\d+)?)\s*\/\s*(\d+(?:\.\d+)?)$/);
  const number = fraction ? Number(fraction[1]) / Number(fraction[2]) : Number(value);
  return Number.isFinite(number) && number > 0 ? number : NaN;
}
