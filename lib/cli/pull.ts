// gpt-oss pull <repo>: download a Hugging Face checkpoint into the hub cache (lib/hub.ts), with a
// progress bar on a terminal; prints the snapshot folder, which every other command (and loadModel)
// accepts, as does `hf:<repo>`.
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { pull } from '../hub.js';

export function registerPull(program: Command): void {
  program
    .command('pull')
    .description('download a Hugging Face checkpoint into the hub cache ($HF_HOME/hub; reused by transformers and vLLM)')
    .argument('<repo>', 'repository id, e.g. openai/gpt-oss-20b')
    .option('--revision <rev>', 'branch, tag or commit', 'main')
    .option('--concurrency <n>', 'files downloaded at once', (v) => Number(v), 4)
    .option('--json', 'print the result as one JSON object')
    .action(async (repo: string, flags: { revision: string; concurrency: number; json?: boolean }) => {
      const bar = process.stderr.isTTY
        ? new cliProgress.SingleBar(
            { stream: process.stderr, format: 'pull {bar} {percentage}% | {done}/{all} MiB | {rate} MiB/s | eta {eta_formatted}', hideCursor: true, clearOnComplete: true },
            cliProgress.Presets.shades_classic,
          )
        : null;
      const mib = (b: number): string => (b / 2 ** 20).toFixed(0);
      const t0 = performance.now();
      let started = false;
      try {
        const r = await pull(repo, {
          revision: flags.revision,
          concurrency: flags.concurrency,
          onProgress: (done, total) => {
            if (!bar) return;
            if (!started) bar.start(total, 0, { done: '0', all: mib(total), rate: '0' });
            started = true;
            const rate = done / 2 ** 20 / Math.max(1e-3, (performance.now() - t0) / 1000);
            bar.update(done, { done: mib(done), all: mib(total), rate: rate.toFixed(0) });
          },
        });
        if (started) bar?.stop();
        if (flags.json) {
          process.stdout.write(`${JSON.stringify(r)}\n`);
          return;
        }
        const cached = r.files.filter((f) => f.cached).length;
        process.stderr.write(
          `${r.repo}@${r.revision} (commit ${r.commit}): ${r.files.length} files, ${mib(r.bytesDownloaded)} MiB downloaded` +
            `${cached ? `, ${cached} already in the cache` : ''}\n`,
        );
        process.stdout.write(`${r.dir}\n`);
      } finally {
        if (started) bar?.stop();
      }
    });
}
