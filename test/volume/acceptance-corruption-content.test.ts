// Flipped bytes in objects (content arena records): caught by fsck and on read,
// with stable codes (test/lib/corruption-cases.ts has the cases).

import { corruptionTests } from '../lib/corruption-cases.js';

corruptionTests('content');
