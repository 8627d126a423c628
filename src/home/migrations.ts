// The home's format and its migrations (docs/migrations.md, docs/home.md).
//
// Kept beside the home rather than in migrations/index.ts so the home layer
// owns its own upgrade path; the runner is the shared one.

import type { Migration } from '../../migrations/index.js';

/** The format name recorded in a home's FORMAT.json. */
export const HOME_FORMAT = 'bazil-home';

/** Home upgrades; none yet, so a home is at version 1 (its layout at creation). */
export const homeMigrations: Migration[] = [];
