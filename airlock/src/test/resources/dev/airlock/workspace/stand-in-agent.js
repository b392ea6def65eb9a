#!/usr/bin/env node
// A stand-in for the agent CLIs of the presets in tests (installed as bin/claude, bin/codex,
// bin/gemini or bin/opencode; it acts by the name it is started as): the real ones come from the
// npm registry, which tests may not reach. It does what matters to Airlock, as the real CLI does:
// it takes the task from the preset's command line, makes one HTTPS call to the API base URL the
// real CLI honours, with the key from the variable the real CLI reads, in the header its API
// wants, through the sandbox's proxy; then it commits its task in the workspace.
const http = require('http'), tls = require('tls'), fs = require('fs'), path = require('path');
const {execFileSync} = require('child_process');
const agents = {
  // name: [the arguments before the task, base URL variable, key variable, header, request path]
  claude: [['-p'], 'ANTHROPIC_BASE_URL', 'ANTHROPIC_API_KEY', k => 'x-api-key: ' + k, '/v1/messages'],
  codex: [['exec', '--dangerously-bypass-approvals-and-sandbox', '--skip-git-repo-check'], 'OPENAI_BASE_URL', 'OPENAI_API_KEY', k => 'authorization: Bearer ' + k,
    '/v1/responses'],
  gemini: [['--skip-trust', '--yolo', '-p'], 'GOOGLE_GEMINI_BASE_URL', 'GEMINI_API_KEY', k => 'x-goog-api-key: ' + k,
    '/v1beta/models/gemini-2.5-pro:generateContent'],
  opencode: [['run'], 'ANTHROPIC_BASE_URL', 'ANTHROPIC_API_KEY', k => 'x-api-key: ' + k, '/v1/messages'],
};
const name = path.basename(process.argv[1]);
const [before, baseVar, keyVar, header, requestPath] = agents[name];
const args = process.argv.slice(2);
if (args.length < before.length + 1 || before.some((a, i) => args[i] !== a)) {
  console.error('usage: ' + name + ' ' + before.join(' ') + ' TASK [FLAGS]'); process.exit(2);
}
const task = args[before.length]; // flags after it (claude's --dangerously-skip-permissions) are the real CLI's
const base = new URL(process.env[baseVar]);
const proxy = new URL(process.env.HTTPS_PROXY);
const body = JSON.stringify({task});
http.request({host: proxy.hostname, port: proxy.port, method: 'CONNECT', path: base.hostname + ':' + base.port})
  .on('connect', (res, socket) => {
    if (res.statusCode !== 200) { console.error('proxy said ' + res.statusCode); process.exit(3); }
    const t = tls.connect({socket, servername: base.hostname}, () => {
      t.write('POST ' + requestPath + ' HTTP/1.1\r\nHost: ' + base.hostname + '\r\n' + header(process.env[keyVar])
        + '\r\nContent-Type: application/json\r\nContent-Length: ' + Buffer.byteLength(body)
        + '\r\nConnection: close\r\n\r\n' + body);
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
      fs.writeFileSync(name + '-result.txt', task + '\n');
      execFileSync('git', ['add', name + '-result.txt']);
      execFileSync('git', ['-c', 'user.name=stand-in', '-c', 'user.email=stand-in@test', 'commit', '-q', '-m',
        'stand-in ' + name + ': ' + task]);
      console.log(answer.subarray(0, answer.indexOf('\r\n')).toString());
      process.exit(0);
    });
    t.on('error', e => { console.error(e.code + ' ' + e.message); process.exit(1); });
  })
  .on('error', e => { console.error(e.message); process.exit(4); })
  .end();
