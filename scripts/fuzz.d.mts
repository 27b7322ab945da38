export interface FuzzReport {
  seed: number;
  cases: number;
  jobs: number;
  seconds: number;
  counts: Record<string, number>;
  failures: { case: number; kind: string; outcome: string; what: string; message?: string }[];
}
export function fuzz(options?: { kind?: 'checkpoint' | 'harmony' | 'all'; cases?: number; seed?: number; jobs?: number }): Promise<FuzzReport>;
