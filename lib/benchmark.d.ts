// The part of benchmark.js (2.1.4) lib/bench.ts uses. Declared here rather than through @types/benchmark
// so that a checkout's node_modules copied from before it was added still compiles.
declare module 'benchmark' {
  interface Stats {
    mean: number;
    rme: number;
    sample: number[];
  }
  interface Options {
    maxTime?: number;
    minSamples?: number;
    initCount?: number;
  }
  class Benchmark {
    constructor(name: string, fn: () => void, options?: Options);
    run(): Benchmark;
    readonly stats: Stats;
    readonly error?: Error;
  }
  export default Benchmark;
}
