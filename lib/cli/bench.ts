// gpt-oss bench: the kernel microbenchmarks (lib/bench.ts) on this machine's device, as a table on
// stdout and, with --json <file>, the report to compare across GPUs.
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { formatBenchTable, runKernelBench } from '../bench.js';
import type { DeviceRequest } from '../model.js';
import { parseDevice } from './common.js';

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description('microbenchmark every kernel (MXFP4, GEMV, MoE, attention, sampling) against ceilings measured in the same run')
    .option('--device <device>', 'auto, cpu, cuda, cuda:N, hip or hip:N', parseDevice, 'auto' as DeviceRequest)
    .option('--quick', 'short runs, fewer problem sizes (a smoke test)')
    .option('--filter <regex>', 'only kernels whose name matches')
    .option('--json <file>', "also write the report as JSON ('-' for stdout instead of the table)")
    .action(async (flags: { device: DeviceRequest; quick?: boolean; filter?: string; json?: string }) => {
      const report = await runKernelBench({
        device: flags.device,
        quick: flags.quick ?? false,
        ...(flags.filter ? { filter: new RegExp(flags.filter) } : {}),
        onRow: (r) => process.stderr.isTTY && process.stderr.write(`  ${r.name}: ${(r.seconds * 1e6).toFixed(1)} us\n`),
      });
      if (flags.json === '-') {
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        return;
      }
      process.stdout.write(`${formatBenchTable(report)}\n`);
      if (flags.json) writeFileSync(flags.json, `${JSON.stringify(report, null, 2)}\n`);
    });
}
