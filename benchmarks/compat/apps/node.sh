#!/bin/sh
# node: an HTTP server and a client request to it over loopback, plus a child process.
set -eu
node -e '
const http = require("http");
const { execFileSync } = require("child_process");
const srv = http.createServer((req, res) => { res.end("hello from node " + req.url); });
srv.listen(0, "127.0.0.1", () => {
  const port = srv.address().port;
  http.get({ host: "127.0.0.1", port, path: "/x" }, (res) => {
    let body = "";
    res.on("data", (c) => (body += c));
    res.on("end", () => {
      if (body !== "hello from node /x") { console.error("bad body", body); process.exit(1); }
      const out = execFileSync("echo", ["child"]).toString();
      if (out !== "child\n") { console.error("bad child", out); process.exit(1); }
      console.log("node", process.version, "ok");
      srv.close();
    });
  }).on("error", (e) => { console.error(e); process.exit(1); });
});
setTimeout(() => { console.error("timeout"); process.exit(1); }, 20000).unref();
'
echo OK
