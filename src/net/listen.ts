/** A start that failed for a reason the operator can fix: the CLI prints the message alone, no stack trace. */
export class StartError extends Error {
  override name = 'StartError'
}

const LISTEN_FAILURES: Record<string, string> = {
  EADDRINUSE: 'the address is in use',
  EACCES: 'permission denied (ports below 1024 need privileges)',
  EADDRNOTAVAIL: 'the address is not one of this machine\'s',
  ENOTFOUND: 'the host name does not resolve'
}

export async function listenOrExplain<T> (start: () => Promise<T>, where: string): Promise<T> {
  try {
    return await start()
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const reason = code === undefined ? undefined : LISTEN_FAILURES[code]
    if (reason !== undefined) throw new StartError(`cannot listen on ${where}: ${reason}`)
    throw err
  }
}
