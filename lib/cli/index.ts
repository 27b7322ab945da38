#!/usr/bin/env node
// gpt-oss: the command line. One file per command; this one only wires them up and reports errors.
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { formatError } from './common.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command()
  .name('gpt-oss')
  .description('run OpenAI gpt-oss models from the command line')
  .version(pkg.version)
  .showHelpAfterError('(gpt-oss --help for usage)')
  .configureOutput({ outputError: (str, write) => write(`gpt-oss: ${str.replace(/^error: /, '')}`) })
  .exitOverride();

try {
  // The native addon loads lazily (lib/native.ts), at the first command that runs a model: --help,
  // --version and pull work without it, and a binary that fails to load is reported as one line.
  const [{ registerInfo }, { registerGenerate }, { registerChat }, { registerPull }, { registerBench }, { registerServe }] = await Promise.all([
    import('./info.js'),
    import('./generate.js'),
    import('./chat.js'),
    import('./pull.js'),
    import('./bench.js'),
    import('./serve.js'),
  ]);
  registerInfo(program);
  registerGenerate(program);
  registerChat(program);
  registerPull(program);
  registerBench(program);
  registerServe(program);
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    // commander already printed its message (help, version, or a usage error)
    process.exitCode = e.exitCode;
  } else {
    process.stderr.write(`${formatError(e)}\n`);
    process.exitCode = 1;
  }
}
