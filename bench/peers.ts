/**
 * nginx as a peer for the bench scripts that need one next to Fulcrum
 * (chaos.ts, apachebench.ts): a config written into a temp directory,
 * reloadable by SIGHUP, the process recorded for cleanup(). (harness.ts keeps
 * its own, tuned for the throughput comparison.)
 */
import type { Subprocess } from "bun";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, spawnQuiet, waitHttp } from "./procs.ts";

export interface NginxOptions {
  /** Backend ports on 127.0.0.1. */
  readonly backends: readonly number[];
  readonly workers?: number;
  /** Idle upstream connections kept (`keepalive`); 0: nginx's default of a new connection per request. */
  readonly keepalive?: number;
  /** A path nginx answers on its own is not needed: this one is polled until it answers 200. */
  readonly readyPath?: string;
}

export interface Nginx {
  readonly url: string;
  readonly proc: Subprocess;
  /** Rewrites the config for these backend ports and reloads (SIGHUP). */
  reload(backends: readonly number[]): Promise<void>;
}

export async function startNginx(home: string, options: NginxOptions): Promise<Nginx> {
  const port = freePort();
  for (const sub of ["", "client_body", "proxy", "fastcgi", "uwsgi", "scgi"]) mkdirSync(join(home, sub), { recursive: true });
  const file = join(home, "nginx.conf");
  const keepalive = options.keepalive ?? 0;
  const write = (backends: readonly number[]) =>
    writeFileSync(
      file,
      `${process.getuid?.() === 0 ? "user root;" : ""}
worker_processes ${options.workers ?? 1};
daemon off;
pid ${home}/nginx.pid;
error_log ${home}/error.log crit;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${home}/client_body;
  proxy_temp_path ${home}/proxy;
  fastcgi_temp_path ${home}/fastcgi;
  uwsgi_temp_path ${home}/uwsgi;
  scgi_temp_path ${home}/scgi;
  keepalive_requests 10000000;
  upstream backends {
${backends.map((p) => `    server 127.0.0.1:${p};`).join("\n")}
${keepalive > 0 ? `    keepalive ${keepalive};\n    keepalive_requests 10000000;` : ""}
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://backends;
${keepalive > 0 ? '      proxy_http_version 1.1;\n      proxy_set_header Connection "";' : ""}
    }
  }
}
`,
    );
  write(options.backends);
  const proc = spawnQuiet(["nginx", "-p", home, "-c", file, "-e", join(home, "error.log")]);
  await waitHttp(`http://127.0.0.1:${port}${options.readyPath ?? "/"}`, 10_000, "nginx");
  return {
    url: `http://127.0.0.1:${port}`,
    proc,
    async reload(backends) {
      write(backends);
      proc.kill("SIGHUP");
      await Bun.sleep(100);
    },
  };
}
