import type { Test } from 'tap'
import { startEmulator, type EmulatorOptions, type RunningEmulator } from '../../src/emulator'
import { MsalKit } from './msal-clients'
import { startUpstreamRecorder, type UpstreamRecorder } from './upstream-recorder'

export interface Testbed {
  emulator: RunningEmulator
  kit: MsalKit
  recorder: UpstreamRecorder
}

/**
 * What most integration tests start from: the Entra ID emulator (its CA in a fresh temp dir), real
 * msal-node clients trusting it, and a recording upstream, all closed when the test ends.
 */
export async function startTestbed (t: Test, options: EmulatorOptions = {}): Promise<Testbed> {
  const emulator = await startEmulator(options)
  t.teardown(() => emulator.close())
  const kit = new MsalKit(emulator)
  t.teardown(() => kit.close())
  const recorder = await startUpstreamRecorder()
  t.teardown(() => recorder.close())
  return { emulator, kit, recorder }
}
