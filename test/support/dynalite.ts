/** Tests start dynalite the way local mode does: one implementation (local/dynalite.ts). */
export { type LocalDynalite as LocalDynamo, startDynalite } from '../../local/dynalite';
