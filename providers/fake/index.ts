/**
 * The fake provider: an in-memory Provider for tests and the leader's
 * property simulator. See fake.ts.
 */
import { FakeProvider, type FakeProviderInit } from './fake.ts'

export { FakeProvider, type FakeCall, type FakeProviderInit, type FakeVerb } from './fake.ts'

export function fakeProvider (init: FakeProviderInit): FakeProvider {
  return new FakeProvider(init)
}
