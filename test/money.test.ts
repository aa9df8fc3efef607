// Amounts as people write them: one parser and one formatter for texts, the SMS channel and the web apps.
import { describe, expect, it } from 'vitest';
import { dollars, parseDollars } from '../core/money.ts';

describe('amounts', () => {
  it('reads what people type, in whole cents, and nothing else', () => {
    const read: [string, number][] = [
      ['12', 1_200],
      ['12.5', 1_250],
      ['$12.50', 1_250],
      [' $ 7.05 ', 705],
      ['0.01', 1],
      ['999999999.99', 99_999_999_999],
    ];
    for (const [text, cents] of read) expect(parseDollars(text)).toBe(cents);
    for (const text of [
      '',
      '0',
      '0.00',
      '-1',
      '1.234',
      '1,000',
      '1e3',
      '12.',
      '.5',
      '$',
      'ten',
      '1000000000',
    ])
      expect(parseDollars(text)).toBeNull();
  });

  it('writes cents as dollars, and reads back what it wrote', () => {
    expect(dollars(1_250)).toBe('$12.50');
    expect(dollars(5)).toBe('$0.05');
    expect(dollars(123_456)).toBe('$1,234.56');
    expect(dollars(-100)).toBe('-$1.00');
    for (const cents of [1, 99, 100, 1_250, 250_000])
      expect(parseDollars(dollars(cents).replace(/,/g, ''))).toBe(cents);
  });
});
