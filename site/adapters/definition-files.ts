import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import * as z from 'zod';
import { IdSchema } from '../../contracts/relay-protocol';
import { definitionDigest } from '../lan-protocol';
import type { DefinitionStore, StoredDefinition } from '../ports';

const StoredDefinitionSchema = z.object({
  vmId: IdSchema,
  xml: z.string().min(1),
  digest: z.string(),
  fromHost: z.string(),
  storedAt: z.number(),
});

/**
 * The site's VM definitions as a relay keeps them: one file per VM in `stateDir/definitions/`
 * (`<vmId>.json`: the domain XML and where it came from), written atomically, readable by the relay's user
 * only. A file that does not parse, or whose XML does not match its digest, is skipped: the agents hand the
 * definition over again.
 */
export class DefinitionFiles implements DefinitionStore {
  private readonly dir: string;

  constructor(stateDir: string) {
    this.dir = join(stateDir, 'definitions');
  }

  async load(): Promise<StoredDefinition[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const loaded: StoredDefinition[] = [];
    for (const name of names.filter((n) => n.endsWith('.json'))) {
      try {
        const parsed = StoredDefinitionSchema.safeParse(
          JSON.parse(await readFile(join(this.dir, name), 'utf8')),
        );
        if (parsed.success && definitionDigest(parsed.data.xml) === parsed.data.digest)
          loaded.push(parsed.data);
      } catch {
        // Unreadable: skipped, as documented.
      }
    }
    return loaded;
  }

  async save(definition: StoredDefinition): Promise<void> {
    // The VM id is an IdSchema id (letters, digits, '.', '_', '-'), so it is a safe file name.
    if (!IdSchema.safeParse(definition.vmId).success) throw new Error('invalid VM id');
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(join(this.dir, `${definition.vmId}.json`), JSON.stringify(definition), {
      fsync: true,
      mode: 0o600,
    });
  }
}
