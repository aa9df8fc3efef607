import { describe, expect, test } from 'vitest';
import { groupCode, isPaymentCode, spokenCode } from '../web/common/codes.ts';

/**
 * How the web apps show a payment code (web/common/codes.ts): the reading groups of every length from 6
 * to 10 digits, leading zeros kept, an entry still being typed, what a screen reader is given to say,
 * and which strings are whole codes.
 */
describe('payment code groups', () => {
  test.each([
    ['123456', ['123', '456']],
    ['1234567', ['1234', '567']],
    ['12345678', ['1234', '5678']],
    ['123456789', ['123', '456', '789']],
    ['1234567890', ['1234', '567', '890']],
  ])('%s is read as %j', (code, groups) => {
    expect(groupCode(code)).toEqual(groups);
    expect(groupCode(code).join('')).toBe(code);
  });

  test('leading zeros stay, in every group', () => {
    expect(groupCode('000012')).toEqual(['000', '012']);
    expect(groupCode('0000000000')).toEqual(['0000', '000', '000']);
    expect(groupCode('0012000300')).toEqual(['0012', '000', '300']);
  });

  test('an entry still being typed is grouped by threes, as its 6-digit form will be', () => {
    expect(groupCode('')).toEqual([]);
    expect(groupCode('1')).toEqual(['1']);
    expect(groupCode('123')).toEqual(['123']);
    expect(groupCode('1234')).toEqual(['123', '4']);
    expect(groupCode('12345')).toEqual(['123', '45']);
  });

  test('a screen reader is given each digit on its own, with a pause between groups', () => {
    expect(spokenCode('012345')).toBe('0 1 2, 3 4 5');
    expect(spokenCode('1234567')).toBe('1 2 3 4, 5 6 7');
    expect(spokenCode('12345678')).toBe('1 2 3 4, 5 6 7 8');
    expect(spokenCode('123456789')).toBe('1 2 3, 4 5 6, 7 8 9');
    expect(spokenCode('1234567890')).toBe('1 2 3 4, 5 6 7, 8 9 0');
  });

  test('a whole code is 6 to 10 digits and nothing else', () => {
    for (const code of ['000000', '1234567', '12345678', '123456789', '0123456789'])
      expect(isPaymentCode(code), code).toBe(true);
    for (const text of [
      '',
      '12345',
      '12345678901',
      '1234 5678',
      '12345a',
      ' 123456',
      '123456\n',
      '１２３４５６',
    ])
      expect(isPaymentCode(text), JSON.stringify(text)).toBe(false);
  });
});
