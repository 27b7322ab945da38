// The one place that finds and loads the native addon: an explicit path (GPT_OSS_NODE_BINARY,
// for Electron/asar packaging), then prebuilds/ and build/Release via node-gyp-build.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Addon } from './addon-types.js';
import { CheckpointError, ConfigError } from './errors.js';

const require = createRequire(import.meta.url);
// lib/*.ts (tests) and dist/*.js (the package) both sit one level below the package root.
export const packageRoot = fileURLToPath(new URL('..', import.meta.url));

function loadAddon(): Addon {
  const override = process.env.GPT_OSS_NODE_BINARY;
  const tried: string[] = [];
  if (override) {
    try {
      return require(override) as Addon;
    } catch (e) {
      tried.push(`GPT_OSS_NODE_BINARY=${override}: ${(e as Error).message}`);
    }
  }
  try {
    const nodeGypBuild = require('node-gyp-build') as (dir: string) => unknown;
    return nodeGypBuild(packageRoot) as Addon;
  } catch (e) {
    tried.push(`${packageRoot} (prebuilds/, build/Release): ${(e as Error).message}`);
  }
  throw new Error(
    'gpt-oss-node: could not load the native addon.\n' +
      tried.map((t) => `  - ${t}`).join('\n') +
      '\nTry: `npm rebuild gpt-oss-node` (builds with cmake-js; needs cmake and a C++17 compiler), ' +
      'or set GPT_OSS_NODE_BINARY to the path of gpt_oss_node.node.',
  );
}

export const native: Addon = loadAddon();
// Native errors about a checkpoint or a config are these classes, whichever side found the problem.
native.setErrorClasses({ CheckpointError, ConfigError });
