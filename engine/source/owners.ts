/**
 * Owner names: the uid/gid <-> user/group name maps of this host.
 *
 * GNU tar stores both the numeric ids and the names of a member's owner. On extraction as root it prefers
 * the names (a user "backup" may have a different uid on the restore host) and falls back to the numeric
 * ids when the name is unknown here; on creation it writes the names that match the ids, or empty names.
 * Like tar (through getpwnam/getpwuid with the usual "files" NSS source), we read /etc/passwd and /etc/group,
 * once, lazily. Hosts that resolve users through LDAP/SSSD only are not covered: names then map to nothing
 * and the numeric ids are used, which is tar's own fallback.
 */
import { readFileSync } from 'node:fs';

export interface OwnerMaps {
  uidByName: Map<string, number>;
  gidByName: Map<string, number>;
  nameByUid: Map<number, string>;
  nameByGid: Map<number, string>;
}

/**
 * parseIdFile parses passwd/group lines "name:x:id:...". The first entry wins for both directions, as
 * getpwnam/getpwuid return the first match in file order.
 */
export function parseIdFile(text: string): { byName: Map<string, number>; byId: Map<number, string> } {
  const byName = new Map<string, number>();
  const byId = new Map<number, string>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#') || line.startsWith('+') || line.startsWith('-')) continue;
    const fields = line.split(':');
    if (fields.length < 3) continue;
    const name = fields[0];
    const id = Number(fields[2]);
    if (name === '' || !/^\d+$/.test(fields[2]) || !Number.isSafeInteger(id)) continue;
    if (!byName.has(name)) byName.set(name, id);
    if (!byId.has(id)) byId.set(id, name);
  }
  return { byName, byId };
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return ''; // no such file (minimal containers): every lookup misses, numeric ids are used
  }
}

/** loadOwnerMaps reads the two files (paths injectable for tests). */
export function loadOwnerMaps(passwd = '/etc/passwd', group = '/etc/group'): OwnerMaps {
  const users = parseIdFile(readOrEmpty(passwd));
  const groups = parseIdFile(readOrEmpty(group));
  return { uidByName: users.byName, gidByName: groups.byName, nameByUid: users.byId, nameByGid: groups.byId };
}

let cached: OwnerMaps | undefined;

function maps(): OwnerMaps {
  cached ??= loadOwnerMaps();
  return cached;
}

/** setOwnerMaps replaces the host maps (tests); `undefined` makes the next lookup re-read /etc. */
export function setOwnerMaps(m: OwnerMaps | undefined): void {
  cached = m;
}

/** uidOfName returns the uid of user `name` on this host, or undefined. */
export function uidOfName(name: string): number | undefined {
  return name === '' ? undefined : maps().uidByName.get(name);
}

/** gidOfName returns the gid of group `name` on this host, or undefined. */
export function gidOfName(name: string): number | undefined {
  return name === '' ? undefined : maps().gidByName.get(name);
}

/** nameOfUid returns the user name of `uid`, or '' when unknown (GNU tar then writes an empty uname). */
export function nameOfUid(uid: number): string {
  return maps().nameByUid.get(uid) ?? '';
}

/** nameOfGid returns the group name of `gid`, or '' when unknown. */
export function nameOfGid(gid: number): string {
  return maps().nameByGid.get(gid) ?? '';
}

/**
 * resolveOwner applies tar's extraction rule: the ids of the names when this host knows them, else the
 * numeric ids from the archive.
 */
export function resolveOwner(h: { uid: number; gid: number; uname: string; gname: string }): { uid: number; gid: number } {
  return { uid: uidOfName(h.uname) ?? h.uid, gid: gidOfName(h.gname) ?? h.gid };
}
