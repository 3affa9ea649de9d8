/**
 * The shape every long-lived service of meshd has (js-libp2p's Startable):
 * construct it from its init and components, then start() and stop() it.
 * Constructing does no I/O; start() may; stop() is safe to call more than
 * once and after a failed start(). daemon/daemon.ts starts services in a
 * fixed order and stops them in reverse, with the steps between them (drain,
 * announce leave) spelled out there.
 */
export interface Startable {
  start: () => void | Promise<void>
  stop: () => void | Promise<void>
}
