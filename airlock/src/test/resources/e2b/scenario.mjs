// Drives an Airlock E2B endpoint with the unchanged e2b SDK, as a user's program would, and
// prints what it saw as one JSON line for the Java test to check. E2B_API_URL, E2B_SANDBOX_URL
// and E2B_API_KEY come from the environment.
import { Sandbox } from 'e2b'

const out = {}
async function until(check, what) {
  const deadline = Date.now() + 20_000
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + what)
    await new Promise((r) => setTimeout(r, 50))
  }
}

const t0 = Date.now()
const sbx = await Sandbox.create('base', {
  envs: { GREETING: 'hello from env' },
  metadata: { purpose: 'airlock-test' },
  timeoutMs: 300_000,
})
out.sandboxId = sbx.sandboxId
const first = await sbx.commands.run('true')
out.firstCommandMs = Date.now() - t0
out.firstExit = first.exitCode

const chunks = []
const r = await sbx.commands.run(
  'for i in 1 2 3; do echo line$i; sleep 0.2; done; echo "$GREETING $LOCAL"; echo oops >&2',
  { envs: { LOCAL: 'local-var' }, onStdout: (d) => chunks.push(d), onStderr: (d) => chunks.push('ERR:' + d) },
)
out.run = { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr, chunks }

try {
  await sbx.commands.run('echo failing >&2; exit 7')
  out.nonZero = 'no error'
} catch (e) {
  out.nonZero = { name: e.constructor.name, exitCode: e.exitCode, stderr: e.stderr }
}
out.identity = (await sbx.commands.run('id -u; pwd; echo $HOME')).stdout
out.rootIdentity = (await sbx.commands.run('id -u; pwd', { user: 'root' })).stdout

await sbx.files.write('dir/hello.txt', 'hello file\n')
const bin = new Uint8Array(256).map((_, i) => i)
await sbx.files.write('/tmp/bin.dat', bin.buffer)
out.readText = await sbx.files.read('dir/hello.txt')
const back = await sbx.files.read('/tmp/bin.dat', { format: 'bytes' })
out.binaryRoundTrip = back.length === 256 && back.every((b, i) => b === i)
out.list = (await sbx.files.list('dir')).map((e) => ({ name: e.name, type: e.type, path: e.path }))
out.exists = await sbx.files.exists('dir/hello.txt')
out.missing = await sbx.files.exists('dir/nope.txt')
out.owner = (await sbx.commands.run('stat -c %u /home/user/dir/hello.txt /home/user/dir')).stdout
await sbx.files.makeDir('made/deep')
out.makeDirAgain = await sbx.files.makeDir('made/deep')
await sbx.files.rename('dir/hello.txt', 'made/deep/moved.txt')
out.afterMove = (await sbx.files.list('made/deep')).map((e) => e.name)
await sbx.files.remove('made')
out.removed = !(await sbx.files.exists('made'))

await sbx.files.makeDir('watched')
const events = []
const watch = await sbx.files.watchDir('watched', (e) => events.push(e.type + ':' + e.name))
await sbx.files.write('watched/new.txt', 'x')
await until(() => events.some((e) => e.endsWith(':new.txt')), 'a watch event')
await watch.stop()
out.watchEvents = events

const bg = await sbx.commands.run('cat', { background: true, stdin: true })
await bg.sendStdin('piped\n')
await bg.closeStdin()
out.stdin = (await bg.wait()).stdout

const pty = await sbx.pty.create({ cols: 80, rows: 24, onData: () => {} })
await sbx.pty.resize(pty.pid, { cols: 100, rows: 30 })
await sbx.pty.kill(pty.pid)

out.listed = (await Sandbox.list({ query: { metadata: { purpose: 'airlock-test' } } }).nextItems()).map(
  (s) => s.sandboxId,
)
const info = await sbx.getInfo()
out.info = { templateId: info.templateId, state: info.state, metadata: info.metadata }
await sbx.setTimeout(600_000)
out.running = await sbx.isRunning()
out.killed = await sbx.kill()
out.killedAgain = await Sandbox.kill(sbx.sandboxId)
try {
  await Sandbox.connect(sbx.sandboxId)
  out.connectAfterKill = 'connected'
} catch (e) {
  out.connectAfterKill = e.constructor.name
}
console.log(JSON.stringify(out))
