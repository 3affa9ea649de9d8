/**
 * The layering rules of the repository, checked by dependency-cruiser in
 * `npm test` (test/layout/layers.test.ts):
 *
 * - mesh/ (the libp2p side: transports, membership, election) and
 *   providers/ (where burst capacity comes from) import nothing from
 *   daemon/: they get what they need through their init options;
 * - no cycle between folders: a request's path (http → proxy → mesh) and a
 *   burst's path (cli → admin → leader → providers) each run one way.
 */
import type { IForbiddenRuleType } from 'dependency-cruiser'

export const FORBIDDEN: IForbiddenRuleType[] = [
  {
    name: 'mesh-imports-no-daemon',
    comment: 'mesh/ is the libp2p layer; the daemon composes it, never the other way round',
    severity: 'error',
    from: { path: '^mesh/' },
    to: { path: '^daemon/' }
  },
  {
    name: 'providers-import-no-daemon',
    comment: 'a provider gets what it needs (meshd binary, config validation) through its init options',
    severity: 'error',
    from: { path: '^providers/' },
    to: { path: '^daemon/' }
  },
  {
    name: 'no-folder-cycles',
    comment: 'folders depend on each other one way only',
    severity: 'error',
    scope: 'folder',
    from: {},
    to: { circular: true }
  }
]

/** The source trees the rules cover (tests and benchmarks may import anything). */
export const SOURCES = ['bin', 'daemon', 'mesh', 'providers']
