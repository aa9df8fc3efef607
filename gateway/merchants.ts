import { randomBytes } from 'node:crypto';
import { CODE_DIGITS_MIN, isCodeDigits } from '../core/codes.ts';
import type { MerchantId } from '../core/ids.ts';
import { SEALED_FOR } from '../core/seal.ts';
import { currentGeneration, META, type MerchantRecord, readMeta, writeMeta } from '../persistence/store.ts';
import type { BankDetails } from '../settlement/bank.ts';
import { isRegistryId, newToken, type RegistryTables } from './registry-tables.ts';

/**
 * Merchants: their records (bank details sealed), SMS keywords and API keys. Every text, wallet push and
 * code names its merchant, so records are kept as read until the next registry write.
 *
 * @module
 */

export class Merchants {
  private readonly cache: Map<string, MerchantRecord>;

  constructor(
    private readonly tables: RegistryTables,
    private readonly now: () => number,
  ) {
    this.cache = tables.cache();
  }

  async create(input: {
    name: string;
    keyword: string | null;
    feeBps: number;
    feeFixedCents: number;
    /** 6 when absent. */
    codeDigitsMin?: number;
    bank: BankDetails;
  }): Promise<{ merchantId: MerchantId; apiKey: string } | { status: 'bad_request'; message: string }> {
    const { tables } = this;
    const { store } = tables;
    const merchantId = `mc_${randomBytes(12).toString('base64url')}` as MerchantId;
    const apiKey = newToken('pk');
    const keyword = input.keyword?.toUpperCase() ?? null;
    const record: MerchantRecord = {
      merchantId,
      name: input.name,
      keyword,
      feeBps: input.feeBps,
      feeFixedCents: input.feeFixedCents,
      codeDigitsMin: input.codeDigitsMin ?? CODE_DIGITS_MIN,
      sealedBank: tables.seal(JSON.stringify(input.bank), SEALED_FOR.bank(merchantId)),
      createdAtMs: this.now(),
    };
    const taken = await tables.write(() => {
      if (keyword && readMeta(store, META.keyword(keyword))) return true;
      if (keyword) writeMeta(store, META.keyword(keyword), merchantId);
      store.merchants.put(merchantId, record);
      store.credentials.put(tables.hash('token', apiKey), {
        kind: 'merchant',
        subject: merchantId,
        expiresAtMs: null,
      });
      return false;
    });
    if (taken) return { status: 'bad_request', message: `the keyword ${keyword} is taken` };
    return { merchantId, apiKey };
  }

  /** Sets the shortest code length of a merchant's new codes; live codes keep theirs. */
  async setCodeDigitsMin(merchantId: MerchantId, codeDigitsMin: number): Promise<MerchantRecord | undefined> {
    if (!isRegistryId(merchantId) || !isCodeDigits(codeDigitsMin)) return undefined;
    const { merchants } = this.tables.store;
    return this.tables.write(() => {
      const merchant = merchants.get(merchantId);
      if (!merchant) return undefined;
      const updated = { ...merchant, codeDigitsMin };
      merchants.put(merchantId, updated);
      return updated;
    });
  }

  /** A new API key for a merchant; every earlier key of the merchant stops working at once. */
  async rotateApiKey(merchantId: MerchantId): Promise<string> {
    const { tables } = this;
    const apiKey = newToken('pk');
    await tables.write(() => {
      const generation = currentGeneration(tables.store, 'merchant', merchantId) + 1;
      writeMeta(tables.store, META.generation('merchant', merchantId), generation);
      tables.store.credentials.put(tables.hash('token', apiKey), {
        kind: 'merchant',
        subject: merchantId,
        expiresAtMs: null,
        generation,
      });
    });
    return apiKey;
  }

  get(merchantId: string): MerchantRecord | undefined {
    return this.tables.readThrough(merchantId, this.cache, this.tables.store.merchants);
  }

  byKeyword(keyword: string): MerchantRecord | undefined {
    if (!isKeyword(keyword)) return undefined;
    const merchantId = readMeta(this.tables.store, META.keyword(keyword.toUpperCase()));
    return typeof merchantId === 'string' ? this.get(merchantId) : undefined;
  }

  bankDetails(merchant: MerchantRecord): BankDetails {
    return JSON.parse(
      this.tables.open(merchant.sealedBank, SEALED_FOR.bank(merchant.merchantId)),
    ) as BankDetails;
  }
}

/** SMS keywords of merchants (`PAY <keyword>`): 2-16 letters or digits, compared in upper case. */
export const KEYWORD_SHAPE = /^[A-Za-z0-9]{2,16}$/;

function isKeyword(value: unknown): value is string {
  return typeof value === 'string' && KEYWORD_SHAPE.test(value);
}
