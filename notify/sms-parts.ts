import * as smpp from 'smpp';

/**
 * A text as the SMS network carries it. Texts in the GSM 03.38 alphabet (with its extension table: €, [,
 * ], {, }, ...) go as GSM 7-bit, anything else (a curly apostrophe, an emoji, most scripts) as UCS-2, so
 * every character arrives as it was written. A text longer than one SMS (160 GSM characters, 70 UCS-2)
 * is cut into parts of 153 or 67 that phones join again: each part starts with a user data header
 * naming the text (an 8-bit reference), the number of parts and its place. A cut never falls inside a
 * GSM escape pair or a UTF-16 surrogate pair.
 *
 * @module
 */

const DATA_CODING = { gsm: 0, ucs2: 8 } as const;

/** A concatenated text has at most this many parts (the header counts them in one byte). */
export const SMS_PARTS_MAX = 255;

export interface SmsParts {
  dataCoding: (typeof DATA_CODING)[keyof typeof DATA_CODING];
  /** Each part's short_message: the user data header first when there are several parts. */
  parts: Buffer[];
}

const GSM = { single: 160, part: 153, unitBytes: 1 };
const UCS2 = { single: 140, part: 134, unitBytes: 2 };

function isGsmText(text: string): boolean {
  return smpp.gsmCoder.GSM.charRegex.test(text);
}

/** The parts of `text`; `reference` (0-255) names it in each part's header. Null when it needs too many. */
export function smsParts(text: string, reference: number): SmsParts | null {
  const gsm = isGsmText(text);
  // UTF-16 big-endian: Node writes little-endian, swapped in place.
  const encoded = gsm ? smpp.gsmCoder.encode(text, DATA_CODING.gsm) : Buffer.from(text, 'utf16le').swap16();
  const dataCoding = gsm ? DATA_CODING.gsm : DATA_CODING.ucs2;
  const sizes = gsm ? GSM : UCS2;
  if (encoded.length <= sizes.single) return { dataCoding, parts: [encoded] };
  const chunks: Buffer[] = [];
  for (let start = 0; start < encoded.length; ) {
    let end = Math.min(start + sizes.part, encoded.length);
    if (end < encoded.length && splitsPair(encoded, end, gsm)) end -= sizes.unitBytes;
    chunks.push(encoded.subarray(start, end));
    start = end;
  }
  if (chunks.length > SMS_PARTS_MAX) return null;
  const header = (seq: number) => Buffer.from([0x05, 0x00, 0x03, reference & 0xff, chunks.length, seq]);
  return { dataCoding, parts: chunks.map((chunk, index) => Buffer.concat([header(index + 1), chunk])) };
}

/** Whether cutting before `end` would part an escape from its character, or a surrogate pair. */
function splitsPair(encoded: Buffer, end: number, gsm: boolean): boolean {
  if (gsm) return encoded[end - 1] === 0x1b;
  const unit = encoded.readUInt16BE(end - 2);
  return unit >= 0xd800 && unit <= 0xdbff;
}
