/**
 * A stand-in daemon for the supervisor tests: runs one supervisor with the
 * `replica:` config given as JSON in argv[2] and prints its snapshot as one
 * JSON line each time the replica becomes ready. A test SIGKILLs this process
 * to see that the engine does not outlive its daemon.
 */
import { pino } from 'pino'
import { replicaSchema } from '../../daemon/config/schema.ts'
import { ReplicaSupervisor } from '../../daemon/replica/supervisor.ts'

const replica = replicaSchema.parse(JSON.parse(process.argv[2] ?? '{}'))
const sup = new ReplicaSupervisor({ replica, nodeName: 'host' }, { log: pino({ level: 'silent' }) })
sup.on('replica:ready', () => { process.stdout.write(`${JSON.stringify(sup.snapshot())}\n`) })
await sup.start()
