/**
 * The wire format: every message survives toWire → JSON → parseMessage, and
 * malformed input is rejected with a MessageError that says where.
 */
import t from 'tap'
import { ELECTION_SCHEMA_VERSION } from '../../mesh/election/raft/constants.ts'
import { MessageError, parseMessage, toWire } from '../../mesh/election/raft/messages.ts'
import type { Message } from '../../mesh/election/raft/types.ts'

const base = { from: 'a', to: 'b', term: 3 }
const good: Message[] = [
  { ...base, type: 'prevote', lastLogIndex: 5, lastLogTerm: 2 },
  { ...base, type: 'vote', lastLogIndex: 0, lastLogTerm: 0 },
  { ...base, type: 'prevote_resp', granted: true },
  { ...base, type: 'vote_resp', granted: false },
  { ...base, type: 'append', prevIndex: 0, prevTerm: 0, entries: [], commit: 0, round: 1 },
  {
    ...base,
    type: 'append',
    prevIndex: 4,
    prevTerm: 1,
    commit: 4,
    round: 9,
    entries: [
      { index: 5, term: 2, kind: 'noop', data: null },
      { index: 6, term: 3, kind: 'config', data: { voters: ['a', 'b', 'c'] } },
      { index: 7, term: 3, kind: 'command', data: { burst: { provider: 'aws', n: 2 }, at: [1, null, 'x'] } },
      { index: 8, term: 3, kind: 'command', data: null }
    ]
  },
  { ...base, type: 'append_resp', round: 2, success: true, matchIndex: 7 },
  { ...base, type: 'append_resp', round: 2, success: false, rejectIndex: 7, hintIndex: 3, hintTerm: 1 }
]

for (const msg of good) {
  t.test(`round trip: ${msg.type}${'success' in msg ? (msg.success ? ' ok' : ' reject') : ''}`, async (t) => {
    const wire = JSON.parse(JSON.stringify(toWire(msg)))
    t.equal(wire.v, ELECTION_SCHEMA_VERSION)
    t.same(parseMessage(wire), msg)
  })
}

const append = good[5] as Extract<Message, { type: 'append' }>
const w = (m: object): Record<string, unknown> => JSON.parse(JSON.stringify({ v: ELECTION_SCHEMA_VERSION, ...m }))
const bad: Array<[string, unknown, RegExp]> = [
  ['not an object', 'hello', /./],
  ['null', null, /./],
  ['no version', { ...good[0] }, /^v: /],
  ['a future version', { ...w(good[0]!), v: 2 }, /^v: /],
  ['an unknown type', { ...w(good[0]!), type: 'install_snapshot' }, /type/],
  ['an unknown field', { ...w(good[0]!), extra: 1 }, /extra|Unrecognized/],
  ['a negative term', { ...w(good[0]!), term: -1 }, /^term: /],
  ['a fractional index', { ...w(good[0]!), lastLogIndex: 1.5 }, /^lastLogIndex: /],
  ['an empty sender', { ...w(good[0]!), from: '' }, /^from: /],
  ['a huge id', { ...w(good[0]!), to: 'x'.repeat(129) }, /^to: /],
  ['granted as a string', { ...w(good[2]!), granted: 'yes' }, /^granted: /],
  ['round 0', { ...w(good[4]!), round: 0 }, /^round: /],
  ['a success reply with reject fields', { ...w(good[6]!), rejectIndex: 1 }, /./],
  ['a rejection without hints', { ...w(good[7]!), hintIndex: undefined }, /hintIndex/],
  ['an entry with a gap', w({ ...append, entries: [append.entries[0], append.entries[2]] }), /^entries\.1\.index: /],
  ['entries not following prevIndex', w({ ...append, prevIndex: 3 }), /^entries\.0\.index: /],
  ['an entry term above the message term', w({ ...append, entries: [{ ...append.entries[0], term: 4 }] }), /^entries\.0\.term: /],
  ['entry terms going down', w({ ...append, entries: [{ ...append.entries[1], index: 5 }, { ...append.entries[0], index: 6 }] }), /^entries\.1\.term: /],
  ['an entry below prevTerm', w({ ...append, prevTerm: 3 }), /^entries\.0\.term: /],
  ['prevTerm above the term', w({ ...append, prevTerm: 4 }), /^prevTerm: /],
  ['prevTerm at index 0', w({ ...append, prevIndex: 0, prevTerm: 1, entries: [] }), /^prevTerm: /],
  ['a config with duplicate voters', w({ ...append, entries: [{ index: 5, term: 2, kind: 'config', data: { voters: ['a', 'a'] } }] }), /duplicate/],
  ['a config with no voters', w({ ...append, entries: [{ index: 5, term: 2, kind: 'config', data: { voters: [] } }] }), /voters/],
  ['a noop with data', w({ ...append, entries: [{ index: 5, term: 2, kind: 'noop', data: 1 }] }), /data/],
  ['a command without data', w({ ...append, entries: [{ index: 5, term: 2, kind: 'command' }] }), /data/],
  ['an unknown entry kind', w({ ...append, entries: [{ index: 5, term: 2, kind: 'snapshot', data: null }] }), /kind/],
  ['too many entries', w({ ...append, prevIndex: 0, prevTerm: 0, entries: Array.from({ length: 65 }, (_, i) => ({ index: i + 1, term: 1, kind: 'noop', data: null })) }), /^entries: /]
]
for (const [name, raw, where] of bad) {
  t.test(`rejects ${name}`, async (t) => {
    try {
      parseMessage(raw)
      t.fail('accepted')
    } catch (err) {
      t.type(err, MessageError)
      t.match((err as Error).message, where)
    }
  })
}
