/** Plain string order for ids, as DynamoDB sorts its keys: deterministic choices and listings. */
export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
