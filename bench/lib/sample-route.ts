import { DEV_IDS } from '../../src/emulator'

/** The `user` block of every bench's gateway route: the dev seed's gateway scope in, the sample API's out. */
export const SAMPLE_USER_ROUTE = { requireScopes: ['access_as_user'], scopes: [`${DEV_IDS.sampleApi.identifierUri}/Items.Read`] }
