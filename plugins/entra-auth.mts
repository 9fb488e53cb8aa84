/**
 * The ES module face of `obo-gateway/entra-auth` (entra-auth.ts is CommonJS). An ES module's
 * default import of a CommonJS file is its whole `module.exports`, which `app.register()` refuses in
 * TypeScript (TS2769); this one's default is the plugin itself, for ESM and CJS consumers alike.
 */
import commonJs from './entra-auth.js'

export * from './entra-auth.js'
export default commonJs.default
