import type * as Uws from 'uWebSockets.js';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/**
 * uWebSockets.js, loaded from its native build or not at all. The package falls back on its own to a
 * JavaScript emulation when it has no build for the running Node.js; in that emulation the server dies
 * on its first request and TLS does not exist, so paycode refuses to start instead and says which
 * runtimes have a build. Every use of the package's values goes through `uws()`.
 *
 * @module
 */

/** Node.js majors by the module ABI their native builds name (`process.versions.modules`). */
const NODE_OF_ABI: Record<string, string> = {
  '93': '16',
  '108': '18',
  '115': '20',
  '127': '22',
  '137': '24',
};

export interface Runtime {
  platform: string;
  arch: string;
  /** `process.versions.modules`. */
  abi: string;
  node: string;
  /** `UWS_USE_FALLBACK`, which asks the package for its emulation. */
  fallbackAsked: boolean;
}

/** Why the native build cannot serve this runtime, given the builds the package holds; null when it can. */
export function uwsRuntimeProblem(runtime: Runtime, builds: readonly string[]): string | null {
  const { platform, arch, abi, node } = runtime;
  const wanted = `uws_${platform}_${arch}_${abi}.node`;
  const runtimes = builds
    .map((build) => /^uws_([a-z0-9]+)_([a-z0-9]+)_([0-9]+)\.node$/.exec(build))
    .filter((match) => match !== null)
    .filter(([, buildPlatform, buildArch]) => buildPlatform === platform && buildArch === arch)
    .map(([, , , buildAbi]) => Number(buildAbi))
    .sort((a, b) => a - b)
    .map((buildAbi) => `Node.js ${NODE_OF_ABI[buildAbi] ?? `ABI ${buildAbi}`}`);
  const choices =
    runtimes.length > 0
      ? `it has native builds for ${runtimes.join(', ')} on ${platform}-${arch}`
      : `it has no native build for ${platform}-${arch}`;
  if (runtime.fallbackAsked)
    return `UWS_USE_FALLBACK asks uWebSockets.js for its JavaScript emulation, which cannot serve paycode; unset it (${choices})`;
  if (!builds.includes(wanted))
    return `uWebSockets.js has no native build for Node.js ${node} on ${platform}-${arch}: ${choices}. Run paycode on one of those (README.md, "Runtime")`;
  return null;
}

const require = createRequire(import.meta.url);
const binaries = join(dirname(require.resolve('uWebSockets.js')), '..', 'binaries');

function load(): typeof Uws {
  const runtime: Runtime = {
    platform: process.platform,
    arch: process.arch,
    abi: process.versions.modules,
    node: process.versions.node,
    fallbackAsked: ['true', 'True', 'TRUE', '1'].includes(process.env.UWS_USE_FALLBACK ?? ''),
  };
  const builds = existsSync(binaries) ? readdirSync(binaries) : [];
  const problem = uwsRuntimeProblem(runtime, builds);
  if (problem) throw new Error(problem);
  const build = join(binaries, `uws_${runtime.platform}_${runtime.arch}_${runtime.abi}.node`);
  try {
    return require(build) as typeof Uws;
  } catch (error) {
    // The build exists but the system cannot load it: most often a C library older than it needs.
    throw new Error(
      `uWebSockets.js's native build for Node.js ${runtime.node} does not load on this system (${(error as Error).message.split('\n')[0]}); see README.md, "Runtime"`,
    );
  }
}

let loaded: typeof Uws | undefined;

/** The native module, loaded at the first call; throws the reason when this runtime has no build. */
export function uws(): typeof Uws {
  loaded ??= load();
  return loaded;
}
