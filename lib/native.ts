// The one place that finds and loads the native addon: an explicit path (GPT_OSS_NODE_BINARY, for
// Electron/asar packaging), then prebuilds/<platform>-<arch>/ and build/Release via node-gyp-build.
//
// The addon loads lazily, at the first use of `native`: importing the package, `gpt-oss --help` and
// `gpt-oss pull` work without it (an install with --ignore-scripts on a platform with no prebuild),
// and a failure is one error that says what was tried and what to do.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Addon } from './addon-types.js';
import { CheckpointError, ConfigError } from './errors.js';

const require = createRequire(import.meta.url);
// lib/*.ts (tests) and dist/*.js (the package) both sit one level below the package root.
export const packageRoot = fileURLToPath(new URL('..', import.meta.url));

/** The platforms the npm package carries a prebuilt binary for (prebuilds/<platform>-<arch>/). */
export const PREBUILT_PLATFORMS = ['linux-x64 (glibc)', 'linux-arm64 (glibc)'] as const;

/** This process's platform as prebuilds/ names it, with the C library on Linux. */
export function platformTag(): string {
  const tag = `${process.platform}-${process.arch}`;
  if (process.platform !== 'linux') return tag;
  // glibc reports its version in the process report; musl (Alpine) has none.
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return `${tag} (${header?.glibcVersionRuntime ? 'glibc' : 'musl'})`;
}

/** The error thrown when no binary could be loaded; `tried` lists each place and why it failed. */
export class AddonLoadError extends Error {
  readonly tried: string[];
  constructor(tried: string[]) {
    const platform = platformTag();
    const supported = (PREBUILT_PLATFORMS as readonly string[]).includes(platform);
    super(
      `gpt-oss-node: could not load the native addon on ${platform}, Node ${process.versions.node}.\n` +
        tried.map((t) => `  - ${t}`).join('\n') +
        '\n' +
        (supported
          ? `A prebuilt binary for ${platform} ships in the package: reinstall it (\`npm install gpt-oss-node\`), or `
          : `No prebuilt binary for ${platform} (prebuilds: ${PREBUILT_PLATFORMS.join(', ')}). `) +
        'Build from source with `npm rebuild gpt-oss-node` (Linux, cmake >= 3.18, a C++17 compiler; nvcc for CUDA), ' +
        'or set GPT_OSS_NODE_BINARY to the path of a gpt_oss_node.node.',
    );
    this.name = 'AddonLoadError';
    this.tried = tried;
  }
}

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
    const where = [join(packageRoot, 'prebuilds'), join(packageRoot, 'build', 'Release')].filter((p) => existsSync(p));
    tried.push(`node-gyp-build in ${packageRoot} (${where.length ? where.join(', ') : 'no prebuilds/ or build/'}): ${(e as Error).message.split('\n')[0]}`);
  }
  throw new AddonLoadError(tried);
}

let loaded: Addon | undefined;

/** The addon, loaded at the first call (throws AddonLoadError when no binary loads). */
export function loadNative(): Addon {
  if (!loaded) {
    const addon = loadAddon();
    // Native errors about a checkpoint or a config are these classes, whichever side found the problem.
    addon.setErrorClasses({ CheckpointError, ConfigError });
    loaded = addon;
  }
  return loaded;
}

/** The addon's exports, loaded at first property access. */
export const native: Addon = new Proxy({} as Addon, {
  get: (_target, key) => Reflect.get(loadNative(), key),
  has: (_target, key) => Reflect.has(loadNative(), key),
});
