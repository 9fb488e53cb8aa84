import type { FastifyReply } from 'fastify'
import { entraErrorBody, type EntraError } from '../entra-errors'
import type { ReplyTarget } from './authorize-request'
import type { Reply } from './flow'
import { formPostPage, type Page } from './pages'

/** The answer to the client at its redirect URI: 302 with query or fragment, or the form_post page. */
export function replyTo (target: ReplyTarget, fields: Record<string, string>): Reply {
  const all = { ...fields, ...(target.state === undefined ? {} : { state: target.state }) }
  if (target.responseMode === 'form_post') return { kind: 'page', page: formPostPage(target.redirectUri, all) }
  const url = new URL(target.redirectUri)
  if (target.responseMode === 'fragment') {
    url.hash = new URLSearchParams(all).toString()
  } else {
    for (const [name, value] of Object.entries(all)) url.searchParams.append(name, value)
  }
  return { kind: 'redirect', location: url.toString() }
}

/** Entra's error redirect: error, error_description with the AADSTS line, error_uri, state. */
export function errorReply (target: ReplyTarget, error: EntraError, correlationId: string): Reply {
  const body = entraErrorBody(error, correlationId)
  return replyTo(target, {
    error: body.error,
    error_description: body.error_description,
    error_uri: body.error_uri,
    ...(body.suberror === undefined ? {} : { suberror: body.suberror }),
    correlation_id: body.correlation_id,
    trace_id: body.trace_id
  })
}

const PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'"

export async function send (reply: FastifyReply, answer: Reply): Promise<FastifyReply> {
  if (answer.cookie !== undefined) reply.header('set-cookie', answer.cookie)
  if (answer.kind === 'redirect') return await reply.code(302).header('location', answer.location).send()
  return await sendPage(reply, answer.page)
}

export async function sendPage (reply: FastifyReply, page: Page): Promise<FastifyReply> {
  // form_post may run in a hidden iframe (silent renewal); the sign-in pages never should.
  if (page.script !== true) reply.header('x-frame-options', 'DENY')
  return await reply.code(page.status)
    .header('content-type', 'text/html; charset=utf-8')
    .header('content-security-policy', page.script === true ? `${PAGE_POLICY}; script-src 'unsafe-inline'` : PAGE_POLICY)
    .send(page.html)
}
