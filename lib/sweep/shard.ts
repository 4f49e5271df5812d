/**
 * Shards: `--shard i/n` runs the cells whose position in the key-sorted list is i mod n (ecosystem.md section 4,
 * "Sharding"). Keys, not spec order, so every shard computes the same partition from the spec alone, and a SLURM
 * job array or a Kubernetes Indexed Job needs no coordinator. The index comes, first found wins, from:
 *
 *   --shard i/n
 *   SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT   (minus SLURM_ARRAY_TASK_MIN, so --array=1-8 works too)
 *   JOB_COMPLETION_INDEX (Kubernetes Indexed Job) with the count in OPDLAB_SHARD_COUNT or JOB_COMPLETIONS
 *     (Kubernetes does not export `completions`: set one of them in the pod template's env)
 *
 * With results on a shared folder, resubmitting the same array reruns only what is missing: each shard skips its
 * done cells. With `--steal` a shard that has finished its own cells goes on to other shards' cells that are not
 * done and not locked (the locks keep that exactly-once).
 */
export interface Shard {
  index: number;
  count: number;
  /** Where it came from, for the log line. */
  source: string;
}

export function parseShard(text: string, source = '--shard'): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  if (!m) throw new Error(`${source} must be i/n with 0 <= i < n (e.g. 0/4), got '${text}'`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || index >= count) throw new Error(`${source} must be i/n with 0 <= i < n, got '${text}'`);
  return { index, count, source };
}

function int(env: Record<string, string | undefined>, name: string): number | null {
  const v = env[name];
  if (v === undefined || v.trim() === '') return null;
  if (!/^\d+$/.test(v.trim())) throw new Error(`${name} must be a non-negative integer, got '${v}'`);
  return Number(v.trim());
}

/** The shard named by the environment (SLURM, Kubernetes), or null. */
export function shardFromEnv(env: Record<string, string | undefined> = process.env): Shard | null {
  const slurmId = int(env, 'SLURM_ARRAY_TASK_ID');
  if (slurmId !== null) {
    const count = int(env, 'SLURM_ARRAY_TASK_COUNT');
    if (count === null) throw new Error('SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not; pass --shard i/n');
    const min = int(env, 'SLURM_ARRAY_TASK_MIN') ?? 0;
    return parseShard(`${slurmId - min}/${count}`, 'SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT');
  }
  const k8s = int(env, 'JOB_COMPLETION_INDEX');
  if (k8s !== null) {
    const count = int(env, 'OPDLAB_SHARD_COUNT') ?? int(env, 'JOB_COMPLETIONS');
    if (count === null) throw new Error('JOB_COMPLETION_INDEX is set but neither OPDLAB_SHARD_COUNT nor JOB_COMPLETIONS is (set it to the Job\'s completions), or pass --shard i/n');
    return parseShard(`${k8s}/${count}`, 'JOB_COMPLETION_INDEX/' + (env.OPDLAB_SHARD_COUNT ? 'OPDLAB_SHARD_COUNT' : 'JOB_COMPLETIONS'));
  }
  return null;
}

/** --shard wins over the environment; null = the whole sweep. */
export function resolveShard(flag: string | undefined, env: Record<string, string | undefined> = process.env): Shard | null {
  if (flag !== undefined) return parseShard(flag);
  return shardFromEnv(env);
}

/** The keys of shard `shard` (all keys when null): sorted, position mod count. */
export function shardKeys(keys: string[], shard: Shard | null): Set<string> {
  if (!shard) return new Set(keys);
  const sorted = [...keys].sort();
  return new Set(sorted.filter((_, i) => i % shard.count === shard.index));
}
