// Response shapes (snake_case) for accounts, shared by the auth, users and admin routes.
import { z } from 'zod';
import type { Tenant, User } from '../services/accounts.js';
import { iso } from './schemas.js';

export const userView = z.object({
  id: z.uuid(),
  tenant_id: z.uuid(),
  email: z.string(),
  full_name: z.string().nullable(),
  role: z.enum(['admin', 'member']),
  is_active: z.boolean(),
  is_platform_admin: z.boolean(),
  last_login_at: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});

export const tenantView = z.object({
  id: z.uuid(),
  name: z.string(),
  status: z.enum(['active', 'suspended']),
  suspended_at: z.string().nullable(),
  suspended_reason: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});

export const toUser = (u: User): z.infer<typeof userView> => ({
  id: u.id,
  tenant_id: u.tenantId,
  email: u.email,
  full_name: u.fullName,
  role: u.role,
  is_active: u.isActive,
  is_platform_admin: u.isPlatformAdmin,
  last_login_at: iso(u.lastLoginAt),
  created_at: u.createdAt.toISOString(),
  updated_at: u.updatedAt.toISOString(),
});

export const toTenant = (t: Tenant): z.infer<typeof tenantView> => ({
  id: t.id,
  name: t.name,
  status: t.status,
  suspended_at: iso(t.suspendedAt),
  suspended_reason: t.suspendedReason,
  created_at: t.createdAt.toISOString(),
  updated_at: t.updatedAt.toISOString(),
});
