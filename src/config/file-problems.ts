import { closeSync, constants, fstatSync, openSync } from 'node:fs'

/** Why a file cannot be read, in words: an errno code alone sends operators to a search engine. */
export function whyUnreadable (err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code
  switch (code) {
    case 'ENOENT': return 'does not exist'
    case 'ENOTDIR': return 'does not exist (part of its path is a file, not a directory)'
    case 'EACCES':
    case 'EPERM': return 'may not be read by this user (permission denied)'
    case 'EISDIR': return 'is a directory, not a file'
    default: return `cannot be read (${code ?? (err as Error).message})`
  }
}

/** What is wrong with reading `path` as a file, without reading it. */
export function unreadable (path: string): string | undefined {
  let fd: number
  try {
    // Non-blocking: opening a FIFO for reading would otherwise wait for a writer.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK)
  } catch (err) {
    return whyUnreadable(err)
  }
  try {
    const stat = fstatSync(fd)
    if (stat.isFile()) return undefined
    return stat.isDirectory() ? whyUnreadable({ code: 'EISDIR' }) : 'is not a regular file'
  } finally {
    closeSync(fd)
  }
}
