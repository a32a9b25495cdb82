/**
 * Source of the in-namespace forwarder, run as `node -e FORWARDER_SOURCE -- PORT=SOCKET... -- COMMAND...`
 * (plain JavaScript, works from src and dist). Inside a plugin's private network namespace (only
 * loopback) it listens on 127.0.0.1:PORT for each pair and pipes every connection to the Unix SOCKET
 * bound in from the host, then runs COMMAND as its child with inherited stdio and environment, forwards
 * SIGTERM/SIGINT/SIGHUP to it and exits with its status. It enforces nothing: the host end of each socket
 * does (see EgressProxy). Exit 125 when it cannot listen.
 */
export const FORWARDER_SOURCE = `
'use strict';
const net = require('node:net');
const { spawn } = require('node:child_process');
const argv = process.argv.slice(1);
const sep = argv.indexOf('--');
const pairs = (sep === -1 ? argv : argv.slice(0, sep)).filter((a) => a !== '');
const command = sep === -1 ? [] : argv.slice(sep + 1);
if (command.length === 0) { process.stderr.write('hay-egress-forwarder: no command\\n'); process.exit(125); }
const MAX = 256;
let pending = pairs.length;
const servers = [];
function fail(msg) { process.stderr.write('hay-egress-forwarder: ' + msg + '\\n'); process.exit(125); }
function run() {
  const child = spawn(command[0], command.slice(1), { stdio: 'inherit' });
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => { try { child.kill(sig); } catch {} });
  child.on('error', (err) => fail('cannot start ' + command[0] + ': ' + err.message));
  child.on('exit', (code, signal) => {
    for (const s of servers) s.close();
    if (signal) { process.removeAllListeners(signal); try { process.kill(process.pid, signal); } catch {} }
    process.exit(code === null ? 128 : code);
  });
}
for (const pair of pairs) {
  const eq = pair.indexOf('=');
  const port = Number(pair.slice(0, eq));
  const socketPath = pair.slice(eq + 1);
  const server = net.createServer({ pauseOnConnect: true }, (client) => {
    const upstream = net.connect(socketPath);
    const done = () => { client.destroy(); upstream.destroy(); };
    client.on('error', done); upstream.on('error', done);
    client.on('close', done); upstream.on('close', done);
    client.setNoDelay(true);
    upstream.on('connect', () => { client.pipe(upstream); upstream.pipe(client); client.resume(); });
  });
  server.maxConnections = MAX;
  server.on('error', (err) => fail('cannot listen on 127.0.0.1:' + port + ': ' + err.message));
  server.listen(port, '127.0.0.1', () => { if (--pending === 0) run(); });
  servers.push(server);
}
if (pairs.length === 0) run();
`;
