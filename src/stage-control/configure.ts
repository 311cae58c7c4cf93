import { KeyTypeError, PermissionError, StageUnsetError, ValidationError } from '../errors';
import type { MigrationBase } from '../migrate/context';
import { checkInteger, checkObject, MAX_RETENTION_SECONDS, optional, rejectUnknownFields, RETENTION_STATUSES, type RetentionStatus } from '../validation';
import { FIELD, retentionField } from './record';

/**
 * The settings every instance of a managed layout shares, kept in its stage record. A field left out
 * stays as it is; a retention status set to null loses its retention (its jobs stay for good).
 */
export interface StageSettingsInput {
  /** How long a clean verify counts for the guards (ms). */
  maxVerifyAgeMs?: number;
  /** How long finished jobs stay, by status, in seconds; it applies to jobs that finish from now on. */
  retention?: { [status in RetentionStatus]?: number | null };
}

/** What configure wrote: the record's revision after it. */
export interface StageSettingsResult {
  revision: number;
}

/** Changes the record's shared settings; not a transition (the stage and epoch stay). */
export async function configureStage(base: MigrationBase, input: StageSettingsInput): Promise<StageSettingsResult> {
  const fields = checkConfigureStage(input);
  const reply = await base.scripts.run('configure_stage.v1', [base.stageKey], fields);
  if (reply[0] === 'UNSET') throw new StageUnsetError(base.stageKey);
  if (reply[0] === 'WRONGTYPE') throw new KeyTypeError(String(reply[1]), String(reply[2]), String(reply[3]));
  if (reply[0] === 'NO_PERMISSION') throw new PermissionError(String(reply[1]), `the Redis user may not run ${String(reply[1])} on ${String(reply[2])}; nothing was written`);
  base.logger.info('redis-dual-write: stage settings changed', { settings: Object.fromEntries(pairs(fields)) });
  return { revision: Number(reply[1]) };
}

/**
 * configureStage's argument, checked before anything is sent, as the record's name, value pairs
 * ('' removes a setting). Exported so the command refuses a bad flag before it connects.
 */
export function checkConfigureStage(input: unknown): string[] {
  const o = checkObject('settings', input);
  rejectUnknownFields('settings', o, ['maxVerifyAgeMs', 'retention']);
  const fields: string[] = [];
  const maxVerifyAgeMs = optional(o.maxVerifyAgeMs, (v) => checkInteger('maxVerifyAgeMs', v, 1, 365 * 24 * 3600_000));
  if (maxVerifyAgeMs !== undefined) fields.push(FIELD.maxVerifyAgeMs, String(maxVerifyAgeMs));
  if (o.retention !== undefined) {
    const retention = checkObject('retention', o.retention);
    rejectUnknownFields('retention', retention, RETENTION_STATUSES);
    for (const status of RETENTION_STATUSES) {
      const value = retention[status];
      if (value === undefined) continue;
      const seconds = value === null ? '' : String(checkInteger(`retention.${status}`, value, 1, MAX_RETENTION_SECONDS));
      fields.push(retentionField(status), seconds);
    }
  }
  if (fields.length === 0) throw new ValidationError('settings', 'empty', 'must change maxVerifyAgeMs or retention');
  return fields;
}

function pairs(flat: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i], flat[i + 1]]);
  return out;
}
