// The limits' own checks (core/limits.ts `validateLimits`), which the engine runs at start: the defaults
// pass, and each rule between two limits, or on one, names what is wrong.
import { describe, expect, it } from 'vitest';
import { LIMITS, type Limits, validateLimits, WIRE_LIMITS } from '../core/limits.ts';

describe('limits', () => {
  it('accept the defaults and name every limit that breaks a rule', () => {
    expect(validateLimits({ ...LIMITS })).toEqual([]);
    // The limits the HTTP API declares to its clients stay as declared, every one of them.
    for (const name of WIRE_LIMITS)
      expect(validateLimits({ ...LIMITS, [name]: LIMITS[name] + 1 })).toEqual([
        `${name} is part of the HTTP API's declarations (gateway/api.ts) and stays ${LIMITS[name]}`,
      ]);
    const broken: [Partial<Limits>, string][] = [
      [{ otpTtlMs: 0 }, 'otpTtlMs must be a positive integer, not 0'],
      [
        { nameLengthMax: 50 },
        "nameLengthMax is part of the HTTP API's declarations (gateway/api.ts) and stays 100",
      ],
      [{ codeTypoExplainMs: 1.5 }, 'codeTypoExplainMs must be a positive integer, not 1.5'],
      [{ loadMaxCents: LIMITS.cardBalanceMaxCents + 1 }, 'loadMaxCents must not exceed cardBalanceMaxCents'],
      [
        { shardBatchLengthMax: LIMITS.shardInboxLengthMax + 1 },
        'shardBatchLengthMax must not exceed shardInboxLengthMax',
      ],
      [
        { shardRestartDelayMs: LIMITS.shardRestartDelayMaxMs + 1 },
        'shardRestartDelayMs must not exceed shardRestartDelayMaxMs',
      ],
      [
        { storageProbeDelayMs: LIMITS.storageProbeDelayMaxMs + 1 },
        'storageProbeDelayMs must not exceed storageProbeDelayMaxMs',
      ],
      [
        { giftStepRetryDelayMs: LIMITS.giftStepRetryDelayMaxMs + 1 },
        'giftStepRetryDelayMs must not exceed giftStepRetryDelayMaxMs',
      ],
      [
        { terminalCodeFailuresMax: LIMITS.terminalCodeFailuresPerDayMax + 1 },
        'terminalCodeFailuresMax must not exceed terminalCodeFailuresPerDayMax',
      ],
      [
        { reportScansPerMerchantMax: LIMITS.reportScansMax + 1 },
        'reportScansPerMerchantMax must not exceed reportScansMax',
      ],
      [{ wsIdleTimeoutS: 10 }, 'wsIdleTimeoutS must be a multiple of 4, at least 8'],
      [{ shardLeaseRenewMs: LIMITS.shardLeaseMs }, 'shardLeaseRenewMs must be at most half of shardLeaseMs'],
    ];
    for (const [change, problem] of broken)
      expect(validateLimits({ ...LIMITS, ...change })).toEqual([problem]);
    expect(validateLimits({ ...LIMITS, merchantLiveCodesMax: LIMITS.merchantLiveCodesMax + 1 })).toEqual([
      expect.stringMatching(/^merchantLiveCodesMax must not exceed /),
    ]);
  });
});
