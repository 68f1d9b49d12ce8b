// The console's pages: one entry each (path, nav label, who sees it, the lazily loaded module). Adding a page is a
// file in pages/ and a row here; each page is its own chunk, so the first download carries none of them.
import { lazy, type ComponentType, type LazyExoticComponent } from 'react';

export interface PageRoute {
  path: string;
  label: string;
  /** Shown in the navigation (detail pages such as one call are not). */
  nav: boolean;
  access: 'user' | 'admin' | 'platform_admin';
  component: LazyExoticComponent<ComponentType>;
}

export const pages: PageRoute[] = [
  { path: '/agent', label: 'Agent', nav: true, access: 'user', component: lazy(() => import('./pages/agent-page')) },
  { path: '/knowledge', label: 'Knowledge', nav: true, access: 'user', component: lazy(() => import('./pages/knowledge-page')) },
  { path: '/talk', label: 'Talk', nav: true, access: 'user', component: lazy(() => import('./pages/talk-page')) },
  { path: '/calls', label: 'Calls', nav: true, access: 'user', component: lazy(() => import('./pages/calls-page')) },
  { path: '/calls/:id', label: 'Call', nav: false, access: 'user', component: lazy(() => import('./pages/call-page')) },
  {
    path: '/phone-numbers',
    label: 'Phone numbers',
    nav: true,
    access: 'user',
    component: lazy(() => import('./pages/phone-numbers-page')),
  },
  { path: '/api-keys', label: 'API keys', nav: true, access: 'admin', component: lazy(() => import('./pages/api-keys-page')) },
  { path: '/users', label: 'Users', nav: true, access: 'admin', component: lazy(() => import('./pages/users-page')) },
  { path: '/webhooks', label: 'Webhooks', nav: true, access: 'user', component: lazy(() => import('./pages/webhooks-page')) },
  { path: '/usage', label: 'Usage', nav: true, access: 'user', component: lazy(() => import('./pages/usage-page')) },
  { path: '/admin/tenants', label: 'Tenants', nav: true, access: 'platform_admin', component: lazy(() => import('./pages/tenants-page')) },
];
