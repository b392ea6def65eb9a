#!/usr/bin/env node
// A stand-in for the claude CLI in tests: the real one comes from the npm registry, which tests
// may not reach. It does what matters to Airlock: one HTTPS call to the API host named by
// ANTHROPIC_BASE_URL (as the real CLI honours it) carrying ANTHROPIC_API_KEY in x-api-key, through
// the sandbox's proxy, then a commit of its task in the workspace.
const http = require('http'), tls = require('tls'), fs = require('fs'), {execFileSync} = require('child_process');
const args = process.argv.slice(2);
if (args[0] !== '-p' || args.length < 2) { console.error('usage: claude -p TASK'); process.exit(2); }
const task = args[1];
const base = new URL(process.env.ANTHROPIC_BASE_URL);
const proxy = new URL(process.env.HTTPS_PROXY);
const body = JSON.stringify({task});
http.request({host: proxy.hostname, port: proxy.port, method: 'CONNECT', path: base.hostname + ':' + base.port})
  .on('connect', (res, socket) => {
    if (res.statusCode !== 200) { console.error('proxy said ' + res.statusCode); process.exit(3); }
    const t = tls.connect({socket, servername: base.hostname}, () => {
      t.write('POST /v1/messages HTTP/1.1\r\nHost: ' + base.hostname + '\r\nx-api-key: '
        + process.env.ANTHROPIC_API_KEY + '\r\nContent-Type: application/json\r\nContent-Length: '
        + Buffer.byteLength(body) + '\r\nConnection: close\r\n\r\n' + body);
    });
    // The answer ends where its Content-Length says: the proxy keeps the connection open.
    let answer = Buffer.alloc(0), done = false;
    t.on('data', d => {
      answer = Buffer.concat([answer, d]);
      const head = answer.indexOf('\r\n\r\n');
      if (done || head < 0) return;
      const m = /content-length: *([0-9]+)/i.exec(answer.subarray(0, head).toString());
      if (m && answer.length - head - 4 < Number(m[1])) return;
      done = true;
      t.destroy();
      fs.writeFileSync('agent-result.txt', task + '\n');
      execFileSync('git', ['add', 'agent-result.txt']);
      execFileSync('git', ['-c', 'user.name=stand-in', '-c', 'user.email=stand-in@test', 'commit', '-q', '-m',
        'stand-in agent: ' + task]);
      console.log(answer.subarray(0, answer.indexOf('\r\n')).toString());
      process.exit(0);
    });
    t.on('error', e => { console.error(e.code + ' ' + e.message); process.exit(1); });
  })
  .on('error', e => { console.error(e.message); process.exit(4); })
  .end();
