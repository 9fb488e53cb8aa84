/** The ES module face of `obo-gateway/error-responses`, for the reason given in entra-auth.mts. */
import commonJs from './error-responses.js'

export * from './error-responses.js'
export default commonJs.default
