import { createMemoryStores } from '../../../adapters/memory';
import { describeStoreConformance } from '../../integration/stores.conformance';

describeStoreConformance('memory', async () => ({ stores: createMemoryStores(), cleanup: async () => {} }));
