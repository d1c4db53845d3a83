import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll } from "vitest"
import { transportConformance } from "../src/testing.ts"
import * as ZmqTransport from "../src/ZmqTransport.ts"

const ipcDir = mkdtempSync(join(tmpdir(), "zactor-conformance-"))
afterAll(() => rmSync(ipcDir, { recursive: true, force: true }))
let next = 0

transportConformance("ZmqTransport over tcp", {
  make: ZmqTransport.make,
  endpoint: () => "tcp://127.0.0.1:*",
  supportsCurve: true,
})

transportConformance("ZmqTransport over ipc", {
  make: ZmqTransport.make,
  endpoint: () => `ipc://${join(ipcDir, `s${next++}.sock`)}`,
  supportsCurve: true,
})

// inproc has no security handshake (CURVE does not apply) and no reconnect after its binder goes away.
transportConformance("ZmqTransport over inproc", {
  make: ZmqTransport.make,
  endpoint: () => `inproc://zactor-conformance-${process.pid}-${next++}`,
  supportsCurve: false,
  supportsReconnect: false,
})
