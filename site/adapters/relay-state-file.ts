import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import * as z from 'zod';
import { CommandResultSchema, ObservedVmSchema, RelayCommandSchema } from '../../contracts/relay-protocol';
import type { RelayState, RelayStateStore } from '../ports';

/** Name of the relay's state file inside its `stateDir`. */
export const RELAY_STATE_FILE = 'relay-state.json';

const HeardHostSchema = z.object({
  hostId: z.string(),
  cluster: z.string(),
  bootId: z.string(),
  cpus: z.number(),
  memoryMiB: z.number(),
  vms: z.array(ObservedVmSchema),
  definitions: z.record(z.string(), z.string()).optional(),
  digest: z.string().default(''),
  heardAt: z.number(),
  takenAt: z.number().optional(),
});

const RelayStateSchema = z.object({
  seq: z.number().int().nonnegative(),
  hosts: z.array(HeardHostSchema),
  commands: z
    .array(
      z.object({ command: RelayCommandSchema, result: CommandResultSchema.nullable(), unsent: z.boolean() }),
    )
    .default([]),
});

/**
 * The relay's state in `stateDir/relay-state.json`, written atomically (temporary file, fsync, rename:
 * write-file-atomic), so a relay killed mid-write finds either the old state or the new one, never half.
 * The folder and the file are the relay user's only (they list BMC-fenced hosts and commands).
 */
export class RelayStateFile implements RelayStateStore {
  private readonly path: string;

  constructor(private readonly dir: string) {
    this.path = join(dir, RELAY_STATE_FILE);
  }

  async load(): Promise<RelayState | null> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
    const parsed = RelayStateSchema.safeParse(JSON.parse(text));
    if (!parsed.success) throw new Error(`${this.path} does not hold a relay state`);
    return parsed.data;
  }

  async save(state: RelayState): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.path, `${JSON.stringify(state)}\n`, { fsync: true, mode: 0o600 });
  }
}
