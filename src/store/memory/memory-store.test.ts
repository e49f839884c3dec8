import { runStoreConformance } from '../store.case.test.js';
import { MemoryStore } from './memory-store.js';

runStoreConformance('MemoryStore', (options) => new MemoryStore(options));
