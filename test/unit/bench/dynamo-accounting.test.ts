import { describe, expect, it } from 'vitest';
import {
  itemSize,
  numberSize,
  operationOf,
  readUnits,
  summarize,
  writeUnits,
} from '../../../bench/dynamo-accounting';

describe('DynamoDB item sizing (CapacityUnitCalculations)', () => {
  it('sizes numbers by significant digits, zeros trimmed', () => {
    expect(numberSize('1764072000000')).toBe(5); // 7 significant digits → 4 + 1
    expect(numberSize('-1')).toBe(2);
    expect(numberSize('0')).toBe(2);
    expect(numberSize('0.0012')).toBe(2);
  });

  it('sizes an item: names, strings, booleans, maps with 3 + 1 per element', () => {
    const item = {
      pk: { S: 'SITE#s1' }, // 2 + 7
      revoked: { BOOL: false }, // 7 + 1
      silentHosts: { M: { h1: { N: '6500' } } }, // 11 + 3 + (1 + 2 + 2)
    };
    expect(itemSize(item)).toBe(9 + 8 + 19);
  });

  it('turns sizes into on-demand units', () => {
    expect(writeUnits(182, 182)).toBe(1);
    expect(writeUnits(0, 1025)).toBe(2);
    expect(writeUnits(6232, 6232)).toBe(7);
    expect(readUnits(6793, false)).toBe(1);
    expect(readUnits(100, false)).toBe(0.5);
    expect(readUnits(0, true)).toBe(1);
  });

  it('names document-client commands by their API operation', () => {
    expect(operationOf('UpdateCommand')).toBe('UpdateItem');
    expect(operationOf('UpdateItemCommand')).toBe('UpdateItem');
    expect(operationOf('QueryCommand')).toBe('Query');
  });

  it('sums calls per report', () => {
    const s = summarize(
      [
        { operation: 'Query', input: {}, output: {}, rru: 1, bytesRead: 6000 },
        { operation: 'UpdateItem', input: {}, output: {}, wru: 1, itemBytesAfter: 182 },
        { operation: 'Query', input: {}, output: {}, rru: 1, bytesRead: 6000 },
        { operation: 'UpdateItem', input: {}, output: {}, wru: 1, itemBytesBefore: 190 },
      ],
      2,
    );
    expect(s).toMatchObject({
      calls: 2,
      writes: 1,
      wru: 1,
      rru: 1,
      largestWrittenItem: 190,
      bytesRead: 6000,
    });
    expect(s.byOperation).toEqual({ Query: 1, UpdateItem: 1 });
  });
});
