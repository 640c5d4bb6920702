/**
 * The Store-backed lease book over the etcd backend on a real 3-member cluster (lease-book-suite.ts, the suite
 * store-lease-book.test.ts runs over SQLite): each subtest under a prefix of its own.
 */
import t from 'tap'
import { openEtcdStore } from '../../src/store/index.js'
import { storeLeaseBookSuite } from './lease-book-suite.js'
import { ETCD_PORTS, startEtcdCluster } from '../helpers/etcd.js'

const cluster = await startEtcdCluster(t, ETCD_PORTS.leaseBook)
let places = 0

storeLeaseBookSuite(t, async () => {
  const prefix = `/lease-book/${++places}`
  return { open: () => openEtcdStore({ endpoints: cluster.endpoints, prefix }) }
})
