// The gpt-oss command line, built with tsc and run as a child process on a random full-vocabulary
// model (and on a damaged checkpoint).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GPT_OSS_20B, GPT_OSS_120B, configJson, writeCheckpoint, corruptCheckpoint, FULL_VOCAB_TINY } from './helpers/checkpoint.js';
import { parseConfig } from '../lib/loader/config.js';
import { parameterCounts } from '../lib/cli/info.js';
import { fixtureDir } from './helpers/fixtures.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = join(root, 'dist/cli/index.js');

const FULL_VOCAB = FULL_VOCAB_TINY;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { cwd: root, env: { ...process.env, FORCE_COLOR: '0' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

const jsonLines = (out: string): Record<string, unknown>[] =>
  out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('gpt-oss CLI', () => {
  let dir: string;
  let model: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gpt-oss-cli-'));
    model = join(dir, 'full-vocab');
    await writeCheckpoint(model, FULL_VOCAB);
  }, 120_000);
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('has a shebang and answers --help', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    for (const c of ['info', 'generate', 'chat', 'pull']) expect(r.stdout).toContain(c);
    expect(await new Promise<string>((res) => execFile('head', ['-1', cli], (_e, out) => res(out)))).toBe('#!/usr/bin/env node\n');
  });

  it('info prints the config, parameter counts, sizes and device; exits 0', async () => {
    const r = await run(['info', model, '--device', 'cpu']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('vocab_size: 201088');
    expect(r.stdout).toContain('hidden_size: 64');
    expect(r.stdout).toContain('experts: 4, top-2 per token');
    expect(r.stdout).toMatch(/parameters: .* total \(\d+\), .* active per token \(\d+\)/);
    expect(r.stdout).toMatch(/bytes on disk: .*\(\d+ bytes\)/);
    expect(r.stdout).toMatch(/bytes in memory: .*\(\d+ bytes\)/);
    expect(r.stdout).toMatch(/device: cpu/);
    expect(r.stdout).toContain('kv cache: f32');
    expect(r.stdout).toContain(`activations: ${process.env.GPTOSS_CPU_ACTIVATIONS || 'f32'}`);
    // --activations: q8 runs on the CPU (info says so); bf16 is a CUDA mode the CPU refuses by name; the flag checks its value
    const q8 = await run(['info', model, '--device', 'cpu', '--activations', 'q8']);
    expect(q8.code).toBe(0);
    expect(q8.stdout).toContain('activations: q8');
    const act = await run(['info', model, '--device', 'cpu', '--activations', 'bf16']);
    expect(act.code).toBe(1);
    expect(act.stderr).toMatch(/option 'activations' 'bf16' is a CUDA mode .*device cpu multiplies f32 or q8 activations/);
    const badAct = await run(['info', model, '--activations', 'fp8']);
    expect(badAct.code).not.toBe(0);
    expect(badAct.stderr).toMatch(/expected f32, q8 or bf16, got 'fp8'/);
    // --kv-cache: a GPU option; the CPU refuses a 16-bit cache by name (one line, exit 1), and the flag checks its value
    const kv = await run(['info', model, '--device', 'cpu', '--kv-cache', 'f16']);
    expect(kv.code).toBe(1);
    expect(kv.stderr).toMatch(/option 'kvCache' 'f16' is not available on device cpu/);
    const bad = await run(['info', model, '--kv-cache', 'fp8']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/expected f16, bf16, f32 or f32k-f16v, got 'fp8'/);
    const mixed = await run(['info', model, '--device', 'cpu', '--kv-cache', 'f32k-f16v']);  // a valid value: the CPU refuses it by name
    expect(mixed.code).toBe(1);
    expect(mixed.stderr).toMatch(/option 'kvCache' 'f32k-f16v' is not available on device cpu/);
    const j = await run(['info', model, '--device', 'cpu', '--json']);
    const info = JSON.parse(j.stdout) as { config: { vocabSize: number }; parameters: { total: number }; device: string };
    expect(info.config.vocabSize).toBe(201088);
    expect(info.parameters.total).toBe(parameterCounts(parseConfig(JSON.parse(configJson(FULL_VOCAB)))).total);
    expect(info.device).toBe('cpu');
  });

  it('info --experts: a fine-tuned bf16 checkpoint quantized at load or run as stored; the flag checks its value', async () => {
    const dir = fixtureDir('tiny-a-bf16');
    const q = JSON.parse((await run(['info', dir, '--device', 'cpu', '--json'])).stdout) as { conversions: string[]; groups: { group: string; dtype: string }[] };
    expect(q.conversions).toEqual(['experts: bf16 -> mxfp4 (experts mxfp4)']);
    const b = await run(['info', dir, '--device', 'cpu', '--experts', 'bf16', '--json']);
    expect(b.code).toBe(0);
    const info = JSON.parse(b.stdout) as typeof q;
    expect(info.conversions).toEqual([]);
    expect(info.groups.find((g) => g.group === 'experts')!.dtype).toBe('bf16');
    const bad = await run(['info', dir, '--experts', 'fp8']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/expected mxfp4 or bf16, got 'fp8'/);
  });

  it('counts parameters as the gpt-oss model card does (20b: 20.91B / 3.61B active; 120b: 116.83B / 5.13B)', () => {
    const p20 = parameterCounts(parseConfig(JSON.parse(configJson(GPT_OSS_20B))));
    expect((p20.total / 1e9).toFixed(2)).toBe('20.91');
    expect((p20.activePerToken / 1e9).toFixed(2)).toBe('3.61');
    const p120 = parameterCounts(parseConfig(JSON.parse(configJson(GPT_OSS_120B))));
    expect((p120.total / 1e9).toFixed(2)).toBe('116.83');
    expect((p120.activePerToken / 1e9).toFixed(2)).toBe('5.13');
  });

  it('generate --json prints one JSON event per line and the result, exits 0, and is deterministic', async () => {
    const args = ['generate', model, '--prompt', 'What is the capital of France?', '--json', '--max-tokens', '8', '--temperature', '0', '--device', 'cpu'];
    const a = await run(args);
    expect(a.stderr).toBe('');
    expect(a.code).toBe(0);
    const events = jsonLines(a.stdout);
    const result = events.at(-1)!;
    expect(result.type).toBe('result');
    const tokens = result.tokens as number[];
    expect(tokens.length).toBeGreaterThan(0);
    expect(tokens.length).toBeLessThanOrEqual(8);
    expect(events.filter((e) => e.type === 'token').map((e) => e.id)).toEqual(tokens);
    expect(result.usage).toMatchObject({ completionTokens: tokens.length });
    expect(['length', 'stop', 'tool-call']).toContain(result.finishReason);
    const b = await run(args);
    expect((jsonLines(b.stdout).at(-1)!.tokens as number[])).toEqual(tokens);
    // sampling with a seed is deterministic too
    const seeded = ['generate', model, '-p', 'Hi', '--json', '--max-tokens', '6', '--temperature', '1', '--top-p', '0.9', '--seed', '42', '--device', 'cpu'];
    const s1 = jsonLines((await run(seeded)).stdout).at(-1)!;
    const s2 = jsonLines((await run(seeded)).stdout).at(-1)!;
    expect(s1.tokens).toEqual(s2.tokens);
    expect(s1.seed).toBe(42);
  });

  it('generate --raw streams the completion text; the prompt can come from stdin', async () => {
    const r = await run(['generate', model, '--raw', '--max-tokens', '5', '--temperature', '0', '--device', 'cpu'], 'Once upon a time');
    expect(r.code).toBe(0);
    const j = jsonLines((await run(['generate', model, '--raw', '--json', '--max-tokens', '5', '--temperature', '0'], 'Once upon a time')).stdout).at(-1)!;
    expect(r.stdout).toBe(`${j.text as string}\n`);
    expect((j.usage as { promptTokens: number }).promptTokens).toBe(4);
  });

  it('chat reads turns from stdin until /exit', async () => {
    const r = await run(['chat', model, '--max-tokens', '4', '--temperature', '0', '--device', 'cpu'], 'Hello\nHow are you?\n/exit\nnot read\n');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.length).toBeGreaterThan(0); // a random model's replies, shown as plain text
  });

  it('chat answers every piped line, also those that arrive while a reply is generating (issue 16)', async () => {
    const args = ['chat', model, '--max-tokens', '6', '--temperature', '0', '--device', 'cpu', '--reasoning'];
    // all lines are written at once: the 2nd and 3rd arrive while the 1st reply is generating
    const three = await run(args, 'Hello\nHow are you?\nAgain\n/exit\n');
    const one = await run(args, 'Hello\n/exit\n');
    const two = await run(args, 'Hello\nHow are you?\n/exit\n');
    for (const r of [one, two, three]) expect(r.code, r.stderr).toBe(0);
    // greedy and one KV cache: the replies of a longer conversation begin with those of a shorter one
    expect(two.stdout.startsWith(one.stdout)).toBe(true);
    expect(three.stdout.startsWith(two.stdout)).toBe(true);
    expect(two.stdout.length).toBeGreaterThan(one.stdout.length);
    expect(three.stdout.length).toBeGreaterThan(two.stdout.length);
  }, 60_000);

  it('generate (chat format) prints the reply and exits 0', async () => {
    const r = await run(['generate', model, '-p', 'Hi', '--max-tokens', '4', '--temperature', '0', '--effort', 'low']);
    expect(r.code).toBe(0);
    expect(r.stdout.endsWith('\n')).toBe(true);
    expect(r.stdout.length).toBeGreaterThan(1);
  });

  it('a bad path: exit code != 0 and one line naming the path', async () => {
    const missing = join(dir, 'no-such-model');
    for (const cmd of [['info', missing], ['generate', missing, '-p', 'hi']]) {
      const r = await run(cmd);
      expect(r.code).not.toBe(0);
      expect(r.stdout).toBe('');
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^gpt-oss: /);
      expect(r.stderr).toContain(missing);
    }
  });

  it('a damaged checkpoint: exit code != 0 and one line naming the file and tensor', async () => {
    const bad = await corruptCheckpoint(join(dir, 'bad'), 'missing-tensor');
    const r = await run(['info', bad.dir]);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^gpt-oss: /);
    expect(r.stderr).toContain(bad.tensorName!);
    const cfg = await corruptCheckpoint(join(dir, 'bad-config'), 'config-missing-field');
    const c = await run(['generate', cfg.dir, '-p', 'hi']);
    expect(c.code).not.toBe(0);
    expect(c.stderr).toContain('hidden_size');
  });

  it('bad options: exit code != 0 and a gpt-oss: message', async () => {
    const r = await run(['generate', model, '-p', 'hi', '--temperature', 'hot']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/^gpt-oss: .*--temperature/);
    const e = await run(['generate', model, '-p', 'hi', '--effort', 'extreme']);
    expect(e.code).not.toBe(0);
    expect(e.stderr).toMatch(/low, medium or high/);
    // serve's step budgets: the flag's own check, then the pair (before the model is loaded)
    const z = await run(['serve', model, '--port', '0', '--max-prefill-tokens', '0']);
    expect(z.code).not.toBe(0);
    expect(z.stderr).toMatch(/--max-prefill-tokens.*expected an integer >= 1/);
    const p = await run(['serve', model, '--port', '0', '--max-batch-tokens', '64', '--max-prefill-tokens', '32']);
    expect(p.code).not.toBe(0);
    expect(p.stderr.trimEnd()).toBe('gpt-oss: --max-prefill-tokens (32) must be at least --max-batch-tokens (64): it is the budget of a step with nothing decoding');
    const k = await run(['serve', model, '--port', '0', '--api-key', '']);
    expect(k.code).not.toBe(0);
    expect(k.stderr.trimEnd()).toBe('gpt-oss: --api-key must not be empty (leave it out to serve without a key)');
  });
});
