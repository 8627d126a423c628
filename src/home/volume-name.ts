// The rules for a volume's name within a home. Names are what users type on
// the command line, so they are kept to characters no shell or file system
// mangles, and a leading '.' is refused so a name never reads as hidden or as
// '.' or '..'.

import { BazilError, ErrorCodes } from '../../errors/index.js';

export const VOLUME_NAME_MAX = 64;
const VOLUME_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/** Throws BAD_ARGUMENT, saying what is wrong, unless `name` is a valid volume name. */
export function checkVolumeName(name: string): void {
  const bad = (why: string): BazilError =>
    new BazilError(ErrorCodes.BAD_ARGUMENT, `invalid volume name '${name}': ${why}`, { name });
  if (name.length === 0) throw bad('it is empty');
  if (name.length > VOLUME_NAME_MAX) throw bad(`it is ${name.length} characters, more than ${VOLUME_NAME_MAX}`);
  if (name.startsWith('.')) throw bad("it may not start with '.'");
  if (!VOLUME_NAME.test(name)) throw bad('use only letters A-Z and a-z, digits, and . _ -');
}
